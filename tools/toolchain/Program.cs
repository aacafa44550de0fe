using Toolchain.Cli;
using Toolchain.Cli.Commands;

return Cli.Invoke(Root.Create(), args);

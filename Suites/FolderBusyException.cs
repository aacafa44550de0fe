namespace Toolchain.Suites;

/// <summary>Another process holds the lock of a run or report folder. Exit code 3.</summary>
public sealed class FolderBusyException(string message) : IOException(message);

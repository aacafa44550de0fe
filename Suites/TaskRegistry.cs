using Toolchain.Suites.Tasks;

namespace Toolchain.Suites;

/// <summary>The one table of registered tasks, by name.</summary>
public static class TaskRegistry
{
    public static IReadOnlyList<AlgorithmicTask> All { get; } =
    [
        new CopyTask(),
        new ReverseTask(),
        new DuplicateTask(),
        new SortTask(),
        new EvenRepeatTask(),
        new BinaryAddTask(),
        new BinaryMulTask(),
        new BinaryMulZerosTask(),
        new QuaternaryAddTask(),
        new QuaternaryMulTask(),
        new DecimalAddTask(),
        new DecimalMulTask(),
    ];

    public static AlgorithmicTask Get(string name) =>
        TryGet(name) ?? throw new KeyNotFoundException($"unknown task '{name}'; known tasks: {string.Join(", ", All.Select(t => t.Name))}");

    public static AlgorithmicTask? TryGet(string name) => All.FirstOrDefault(t => t.Name == name);
}

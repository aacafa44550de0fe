namespace Toolchain.Train;

/// <summary>Training cannot go on: the loss stayed NaN/inf through every recovery. The last good checkpoint is kept.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Toolchain.Cli;

/// <summary>Constraints declared with an option, checked at parse time: a violation is one `error:` line, exit 2.</summary>
public static class OptionRules
{
    /// <summary>A finite number above zero (NaN, infinity, 0 and negatives are refused).</summary>
    public static Option<double> MustBePositive(this Option<double> option)
    {
        option.Validators.Add(result => { if (Parsed<double>(result, out var v)) CheckPositive(result, v); });
        return option;
    }

    /// <summary>When given: a finite number above zero.</summary>
    public static Option<double?> MustBePositive(this Option<double?> option)
    {
        option.Validators.Add(result => { if (Parsed<double?>(result, out var v) && v is { } given) CheckPositive(result, given); });
        return option;
    }

    public static Option<int> MustNotBeNegative(this Option<int> option)
    {
        option.Validators.Add(result =>
        {
            if (Parsed<int>(result, out int v) && v < 0) result.AddError($"{option.Name} must be 0 or more, not {v}");
        });
        return option;
    }

    public static Option<int> MustBeAtLeastOne(this Option<int> option)
    {
        option.Validators.Add(result =>
        {
            if (Parsed<int>(result, out int v) && v < 1) result.AddError($"{option.Name} must be at least 1, not {v}");
        });
        return option;
    }

    /// <summary>When given: a comma-separated list with at least one non-empty name.</summary>
    public static Option<string?> MustNameSomething(this Option<string?> option)
    {
        option.Validators.Add(result =>
        {
            const StringSplitOptions split = StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;
            if (result.GetValueOrDefault<string?>() is { } v && v.Split(',', split).Length == 0)
                result.AddError($"{option.Name} names nothing ('{v}'); give one or more names, e.g. {option.Name} 1x,10x, " +
                    "or leave it out for all");
        });
        return option;
    }

    /// <summary>The option's value, or false when it did not parse (that error is reported on its own).</summary>
    private static bool Parsed<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    private static void CheckPositive(OptionResult result, double value)
    {
        if (!(value > 0) || !double.IsFinite(value))
            result.AddError($"{result.Option.Name} must be a positive number, not {value.ToString(CultureInfo.InvariantCulture)}");
    }
}

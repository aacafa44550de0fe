using System.Text;

namespace Toolchain.Evaluate;

/// <summary>Text from a model, a suite or a results file made inert in the Markdown outputs (summary.md,
/// compare.md, gates.md, which CI shows as job summaries): HTML is escaped as in the HTML reports, and the
/// characters that end a table cell or open a code span are backslash-escaped.</summary>
public static class MarkdownText
{
    public static string Esc(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '|' or '\\' or '`' => "\\" + c,
                '\r' or '\n' => " ",
                _ => c.ToString(),
            });
        return sb.ToString();
    }
}

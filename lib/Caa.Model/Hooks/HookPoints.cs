using System.Text.RegularExpressions;

namespace Caa.Model.Hooks;

/// <summary>
/// The one naming scheme for hook points (TransformerLens style), used in code, saved files and notebooks:
/// <c>blocks.{L}.hook_resid_pre</c>, <c>…hook_attn_out</c>, <c>…hook_resid_mid</c>, <c>…hook_mlp_out</c>, <c>…hook_resid_post</c>.
/// <c>resid_post</c> of block L is the block's output, Hugging Face's <c>hidden_states[L+1]</c> — what CAA reads and writes.
/// </summary>
public static partial class HookPoints
{
    public const string ResidPre = "hook_resid_pre";
    public const string AttnOut = "hook_attn_out";
    public const string ResidMid = "hook_resid_mid";
    public const string MlpOut = "hook_mlp_out";
    public const string ResidPost = "hook_resid_post";

    /// <summary>The five points of each block, in the order the forward pass reaches them.</summary>
    public static IReadOnlyList<string> PerBlock { get; } = [ResidPre, AttnOut, ResidMid, MlpOut, ResidPost];

    /// <summary><c>blocks.{layer}.{point}</c>.</summary>
    public static string Name(int layer, string point) => $"blocks.{layer}.{point}";

    /// <summary><c>blocks.{layer}.hook_resid_post</c>: the output of block <paramref name="layer"/>.</summary>
    public static string ResidPostOf(int layer) => Name(layer, ResidPost);

    /// <summary>Splits a hook name into its layer and point; throws naming the accepted forms otherwise.</summary>
    public static (int Layer, string Point) Parse(string name)
    {
        var m = NamePattern().Match(name);
        if (!m.Success || !PerBlock.Contains(m.Groups[2].Value))
            throw new ArgumentException($"'{name}' is not a hook point name; expected blocks.{{L}}.{{{string.Join("|", PerBlock)}}}", nameof(name));
        return (int.Parse(m.Groups[1].Value), m.Groups[2].Value);
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.(hook_[a-z_]+)$")]
    private static partial Regex NamePattern();
}

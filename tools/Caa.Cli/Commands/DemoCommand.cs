using System.CommandLine;
using Caa.Cli.Common;
using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Spectre.Console;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa demo</c>: a tour of the hook points on a small Llama. Uses the embedded model organism when present, else a
/// random-weight model (which shows the mechanics — capture, steer from a position, cached generation — not behavior).
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Tour of the model and its hook points: capture the residual stream, steer from a position, generate.");
        cmd.SetAction(r =>
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Output) });
            var folder = EmbeddedData.OrganismFolder();
            LlamaForCausalLM model;
            if (folder is not null) { model = LlamaForCausalLM.FromPretrained(folder); console.MarkupLine($"Model: [bold]{Markup.Escape(folder)}[/]"); }
            else
            {
                var config = new LlamaConfig { HiddenSize = 64, IntermediateSize = 172, NumHiddenLayers = 4, NumAttentionHeads = 8, NumKeyValueHeads = 4, VocabSize = 256 };
                model = LlamaForCausalLM.Create(config);
                model.InitializeWeights(seed: 0);
                console.MarkupLine("Model: [bold]random-weight Llama[/] (4 blocks, hidden 64, GQA 8/4) — the embedded organism is not present");
            }
            using var _m = model;
            using var _g = no_grad();
            var c = model.Config;
            console.MarkupLine($"Hook points per block: {string.Join(", ", HookPoints.PerBlock)}; e.g. [bold]{HookPoints.ResidPostOf(1)}[/] = HF hidden_states[[2]]");

            var ids = Enumerable.Range(0, 12).Select(i => (long)(3 + (i * 37) % (c.VocabSize - 3))).ToArray();
            using var input = tensor(ids).unsqueeze(0);
            var names = Enumerable.Range(0, c.NumHiddenLayers).Select(HookPoints.ResidPostOf).ToList();
            using var capture = model.Hooks.Capture(names);
            using var plain = model.Forward(input);
            var norms = new Table().AddColumns("hook point", "‖resid_post‖ at the last position");
            foreach (var n in names) norms.AddRow(n, $"{capture[n][0, -1].norm().item<float>():F3}");
            console.Write(norms);

            var layer = c.NumHiddenLayers / 2;
            using var vector = capture[HookPoints.ResidPostOf(layer)][0, -1].clone();
            const int start = 6;
            using (model.Hooks.AddVector(HookPoints.ResidPostOf(layer), vector, tensor(2.0f), PositionMask.From([start])))
            {
                using var steered = model.Forward(input);
                var before = (steered[0, ..start] - plain[0, ..start]).abs().max().item<float>();
                var after = (steered[0, start..] - plain[0, start..]).abs().max().item<float>();
                console.MarkupLine($"Adding 2 × v at {HookPoints.ResidPostOf(layer)} from position {start}: max |Δlogit| before it = {before:G3}, from it on = {after:G3}");
            }
            console.MarkupLine($"Hooks attached after the steering scope: {model.Hooks.Count} (the capture's {names.Count}; it detaches when disposed)");

            var prompt = ids.Take(5).Select(x => (int)x).ToList();
            var cached = model.Generate([prompt], new GenerationOptions { MaxNewTokens = 10, StopAtEos = false })[0];
            var uncached = model.Generate([prompt], new GenerationOptions { MaxNewTokens = 10, StopAtEos = false, UseCache = false })[0];
            console.MarkupLine($"Greedy continuation with KV cache: {string.Join(" ", cached)}; without: {(cached.SequenceEqual(uncached) ? "identical" : "DIFFERENT")}");
        });
        return cmd;
    }
}

using System.CommandLine;
using System.Diagnostics;
using Caa.Cli.Common;
using Caa.Model;
using Caa.Model.Llama;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa bench forward|write-checkpoint|load</c>: forward throughput next to the matmul peak measured in the same run,
/// and peak memory while loading a checkpoint. Numbers from one run are compared as ratios (the machine is shared).
/// </summary>
public static class BenchModelCommands
{
    public static IEnumerable<Command> Subcommands() => [Forward(), WriteCheckpoint(), Load()];

    /// <summary>A Llama-2-7B-shaped model with fewer layers (hidden 4096, 32 heads, ffn 11008, vocab 32000).</summary>
    public static LlamaConfig SevenBShaped(int layers) => new()
    {
        HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = layers, NumAttentionHeads = 32, NumKeyValueHeads = 32,
        VocabSize = 32000, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096,
    };

    static Command Forward()
    {
        var stories = new Option<string?>("--stories260k") { Description = "Folder of the stories260K HF checkpoint (e.g. ../shared/reference/stories260K/hf); skipped when absent." };
        var tokens = new Option<int>("--tokens") { Description = "Sequence length.", DefaultValueFactory = _ => 512 };
        var reps = new Option<int>("--repeats") { Description = "Timed repetitions (median reported).", DefaultValueFactory = _ => 3 };
        var threads = new Option<int?>("--threads") { Description = "torch intra-op threads (default: torch's choice, the number of cores)." };
        var cmd = new Command("forward", "Forward throughput (tokens/s) in fp32 and bf16 beside the matmul peak of this machine.") { stories, tokens, reps, threads };
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            int t = r.GetValue(tokens), n = r.GetValue(reps);
            if (r.GetValue(threads) is { } th) set_num_threads(th);
            o.WriteLine($"threads: {get_num_threads()}, tokens: {t}, repeats: {n} (median)");
            o.WriteLine("| case | dtype | time (ms) | tokens/s | GFLOP/s | % of matmul peak |");
            o.WriteLine("|---|---|---|---|---|---|");
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var _ = no_grad();
                var peak = MatmulPeak(dtype, n);
                o.WriteLine($"| matmul (512x4096)·(4096x4096) | {DeviceAndDType.Name(dtype)} | {peak.Ms:F1} | – | {peak.Gflops:F0} | 100 |");
                var models = new List<(string Name, Func<LlamaForCausalLM> Make)>();
                if (r.GetValue(stories) is { } s) models.Add(("stories260K", () => LlamaForCausalLM.FromPretrained(s, dtype)));
                models.Add(("random 7B-shaped, 2 layers", () => { var m = LlamaForCausalLM.Create(SevenBShaped(2), dtype); m.InitializeWeights(0); return m; }));
                foreach (var (name, make) in models)
                {
                    using var model = make();
                    var ids = randint(3, model.Config.VocabSize, [1, t], dtype: ScalarType.Int64);
                    var ms = Median(n, () => model.Forward(ids).Dispose());
                    var gflops = MatmulFlopsPerToken(model.Config) * t / (ms / 1000) / 1e9;
                    o.WriteLine($"| {name} | {DeviceAndDType.Name(dtype)} | {ms:F1} | {t / (ms / 1000):F0} | {gflops:F0} | {100 * gflops / peak.Gflops:F0} |");
                }
            }
        });
        return cmd;
    }

    /// <summary>Multiply-adds ×2 of every weight matrix per token (attention scores excluded: small at these lengths).</summary>
    static double MatmulFlopsPerToken(LlamaConfig c)
    {
        double h = c.HiddenSize, kv = c.KeyValueHeads * c.HeadDim, q = c.NumAttentionHeads * c.HeadDim;
        var perLayer = h * q + 2 * h * kv + q * h + 3 * h * c.IntermediateSize;
        return 2 * (c.NumHiddenLayers * perLayer + h * c.VocabSize);
    }

    static (double Ms, double Gflops) MatmulPeak(ScalarType dtype, int n)
    {
        using var a = randn(512, 4096).to(dtype);
        using var b = randn(4096, 4096).to(dtype);
        var ms = Median(n, () => a.matmul(b).Dispose());
        return (ms, 2.0 * 512 * 4096 * 4096 / (ms / 1000) / 1e9);
    }

    static double Median(int n, Action run)
    {
        run(); // warm-up
        var times = new List<double>();
        for (var i = 0; i < n; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    static Command WriteCheckpoint()
    {
        var output = new Option<string>("--out") { Description = "Folder to write.", Required = true };
        var layers = new Option<int>("--layers") { Description = "Layers of the 7B-shaped model (2 ≈ 1.3 GB in bf16).", DefaultValueFactory = _ => 2 };
        var cmd = new Command("write-checkpoint", "Write a random 7B-shaped bf16 checkpoint (sharded) for the load benchmark.") { output, layers };
        cmd.SetAction(r =>
        {
            using var m = LlamaForCausalLM.Create(SevenBShaped(r.GetValue(layers)), ScalarType.BFloat16);
            m.InitializeWeights(0);
            m.SavePretrained(r.GetValue(output)!, maxShardBytes: 512L << 20);
            var bytes = Directory.GetFiles(r.GetValue(output)!, "*.safetensors").Sum(f => new FileInfo(f).Length);
            r.InvocationConfiguration.Output.WriteLine($"wrote {bytes / 1e6:F0} MB of safetensors to {r.GetValue(output)}");
        });
        return cmd;
    }

    static Command Load()
    {
        var m = new ModelOptions();
        var cmd = new Command("load", "Load a checkpoint and report peak resident memory against its size on disk (run in a fresh process).");
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var dir = m.ResolveFolder(r);
            _ = zeros(1); // load libtorch first so its own footprint is part of the baseline
            var before = ProcStatusKb("VmRSS");
            var sw = Stopwatch.StartNew();
            using var model = m.LoadModel(r);
            var elapsed = sw.Elapsed.TotalSeconds;
            var peak = ProcStatusKb("VmHWM");
            var disk = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length);
            var inMemory = model.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
            o.WriteLine($"checkpoint on disk: {disk / 1e6:F0} MB; weights in memory ({DeviceAndDType.Name(model.DType)}): {inMemory / 1e6:F0} MB; load time {elapsed:F1} s");
            o.WriteLine($"RSS before loading: {before / 1e3:F0} MB; peak RSS: {peak / 1e3:F0} MB; peak − before = {(peak - before) / 1e3:F0} MB = {(peak - before) * 1e3 / disk:F2} × the checkpoint size");
        });
        return cmd;
    }

    static long ProcStatusKb(string field)
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":"))
            ?? throw new CliException($"/proc/self/status has no {field} (this benchmark needs Linux)");
        return long.Parse(line.Split(':')[1].Trim().Split(' ')[0]);
    }
}

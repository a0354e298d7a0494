using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Cli.Commands;
using Caa.Interpret.Evaluation;
using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Evaluation;

public class EvalCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var code = new RootCommand { EvalCommands.Create() }.Parse(args)
            .Invoke(new InvocationConfiguration { Output = TextWriter.Synchronized(o), Error = TextWriter.Synchronized(e), EnableDefaultExceptionHandler = false });
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A random-weight 3-layer model (hidden 32) saved in &lt;dir&gt;/model with the Llama 2 tokenizer.</summary>
    static string ModelFolder(string dir, int seed)
    {
        var modelDir = Path.Combine(dir, "model");
        using (var model = TinyModels.Create(seed, config: TinyModels.Config(layers: 3, hidden: 32, heads: 4, kvHeads: 2, vocab: 32000)))
            model.SavePretrained(modelDir);
        File.Copy(Shared.Require("tokenizers/llama2/tokenizer.model"), Path.Combine(modelDir, "tokenizer.model"));
        return modelDir;
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void SweepAbAndCapabilityWriteTheirFilesAndTheSweepResumes()
    {
        var dir = Directory.CreateTempSubdirectory("caa-evalcli-").FullName;
        try
        {
            var modelDir = ModelFolder(dir, seed: 9);
            var g = new TorchSharp.torch.Generator(3);
            var vecDir = Directory.CreateDirectory(Path.Combine(dir, "vectors")).FullName;
            foreach (var b in new[] { "alpha", "beta" })
                SafeTensorsWriter.Write(Path.Combine(vecDir, b + ".safetensors"),
                    Enumerable.Range(0, 3).Select(l => new KeyValuePair<string, Tensor>(HookPoints.ResidPostOf(l), randn(new long[] { 32 }, generator: g) * 3)));
            var data = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName;
            var json = JsonSerializer.Serialize(EvalFixtures.Items());
            File.WriteAllText(Path.Combine(data, "alpha.json"), json);
            Directory.CreateDirectory(Path.Combine(data, "beta"));
            File.WriteAllText(Path.Combine(data, "beta", "test_dataset_ab.json"), json);

            var outDir = Path.Combine(dir, "sweep");
            var args = new[] { "eval", "sweep", "--model", modelDir, "--vectors", Path.Combine(dir, "vectors"), "--dataset", data, "--layers", "all", "--multipliers", "-1,0,1", "--out", outDir };
            var (code, _, err) = Run(args);
            Assert.True(code == 0, err);
            var csv = File.ReadAllText(Path.Combine(outDir, "sweep.csv"));
            var rows = SweepCsv.Read(Path.Combine(outDir, "sweep.csv"));
            Assert.Equal(2 * 3 * 3 * EvalFixtures.Questions.Length, rows.Count);
            Assert.Equal(["beta", "alpha"], rows.Select(r => r.Behavior).Distinct()); // folders first, then files
            Assert.StartsWith(SweepSummary.Header + "\n", File.ReadAllText(Path.Combine(outDir, "summary.csv")));
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
            Assert.NotNull(manifest["results"]!["best_layer"]!["alpha"]);

            // Rerun: everything is read back, nothing recomputed, same file.
            (code, _, err) = Run(args);
            Assert.True(code == 0, err);
            Assert.Equal(csv, File.ReadAllText(Path.Combine(outDir, "sweep.csv")));
            Assert.Equal(6, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!["results"]!["cells_resumed"]!);

            // The reference mode agrees.
            var refOut = Path.Combine(dir, "sweep-ref");
            (code, _, err) = Run([.. args[..^1], refOut, "--mode", "reference"]);
            Assert.True(code == 0, err);
            var refRows = SweepCsv.Read(Path.Combine(refOut, "sweep.csv"));
            Assert.All(rows.Zip(refRows), t => Assert.Equal(t.Second.PMatch, t.First.PMatch, 1e-4));

            // eval ab: unsteered and steered; multiplier 0 = unsteered.
            var abOut = Path.Combine(dir, "ab");
            (code, _, err) = Run("eval", "ab", "--model", modelDir, "--dataset", Path.Combine(data, "alpha.json"), "--out", abOut);
            Assert.True(code == 0, err);
            var plain = SweepCsv.Read(Path.Combine(abOut, "ab.csv"));
            Assert.All(plain, r => Assert.Equal((-1, 0.0), (r.Layer, r.Multiplier)));
            (code, _, err) = Run("eval", "ab", "--model", modelDir, "--dataset", Path.Combine(data, "alpha.json"), "--vectors", Path.Combine(dir, "vectors"),
                "--layer", "1", "--multipliers", "-1,0,1", "--out", abOut);
            Assert.True(code == 0, err);
            var steered = SweepCsv.Read(Path.Combine(abOut, "ab.csv"));
            Assert.Equal(plain.Select(r => r.PMatch), steered.Where(r => r.Multiplier == 0).Select(r => r.PMatch));
            Assert.All(steered.Where(r => r.Multiplier == 1), r => Assert.Equal(rows.Single(x => x.Behavior == "alpha" && x.Layer == 1 && x.Multiplier == 1 && x.Item == r.Item).PMatch, r.PMatch, 1e-4));

            // eval capability
            var capOut = Path.Combine(dir, "cap");
            (code, _, err) = Run("eval", "capability", "--model", modelDir, "--dataset", Path.Combine(data, "alpha.json"), "--vectors", Path.Combine(dir, "vectors"),
                "--behavior", "beta", "--layer", "2", "--multipliers", "-1,0,1", "--out", capOut);
            Assert.True(code == 0, err);
            var cap = File.ReadAllLines(Path.Combine(capOut, "capability.csv"));
            Assert.Equal("multiplier,item,p_correct", cap[0]);
            Assert.Equal(1 + 3 * EvalFixtures.Questions.Length, cap.Length);

            // resuming into a folder made from other vectors is refused
            var otherVectors = Directory.CreateDirectory(Path.Combine(dir, "vectors2")).FullName;
            foreach (var b in new[] { "alpha", "beta" })
                SafeTensorsWriter.Write(Path.Combine(otherVectors, b + ".safetensors"),
                    Enumerable.Range(0, 3).Select(l => new KeyValuePair<string, Tensor>(HookPoints.ResidPostOf(l), ones(32))));
            Assert.Throws<Caa.Cli.Common.CliException>(() => Run("eval", "sweep", "--model", modelDir, "--vectors", otherVectors, "--dataset", data, "--out", outDir));

            // user errors
            Assert.Throws<Caa.Cli.Common.CliException>(() => Run("eval", "ab", "--model", modelDir, "--dataset", Path.Combine(data, "alpha.json"), "--layer", "1", "--out", abOut));
            Assert.Throws<Caa.Cli.Common.CliException>(() => Run("eval", "sweep", "--model", modelDir, "--vectors", Path.Combine(dir, "vectors"), "--dataset", data, "--layers", "0,7", "--out", outDir));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// With no --vectors and no --dataset, a sweep uses the datasets beside the model: vectors from every behavior's generation
    /// split, normalized across behaviors and saved in &lt;out&gt;/vectors, then the chosen behaviors' test splits.
    /// </summary>
    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void SweepWithoutVectorsOrDatasetUsesTheModelsDatasetsAndExtractsOnce()
    {
        var dir = Directory.CreateTempSubdirectory("caa-evalcli-defaults-").FullName;
        try
        {
            var modelDir = ModelFolder(dir, seed: 4);
            var json = JsonSerializer.Serialize(EvalFixtures.Items());
            foreach (var b in new[] { "alpha", "beta" })
                foreach (var (split, file) in new[] { ("generate", "generate_dataset.json"), ("test", "test_dataset_ab.json") })
                    File.WriteAllText(Path.Combine(Directory.CreateDirectory(Path.Combine(modelDir, "datasets", split, b)).FullName, file), json);

            var outDir = Path.Combine(dir, "sweep");
            string[] args = ["eval", "sweep", "--model", modelDir, "--behavior", "beta", "--layers", "all", "--multipliers", "-1,0,1", "--out", outDir];
            var (code, _, err) = Run(args);
            Assert.True(code == 0, err);
            var rows = SweepCsv.Read(Path.Combine(outDir, "sweep.csv"));
            Assert.Equal(3 * 3 * EvalFixtures.Questions.Length, rows.Count);
            Assert.All(rows, r => Assert.Equal("beta", r.Behavior));
            var sets = new[] { "alpha", "beta" }.Select(b => Caa.Interpret.Vectors.SteeringVectorSet.Load(Path.Combine(outDir, "vectors", b + ".safetensors"))).ToList();
            try
            {
                Assert.All(sets, s => Assert.Equal(Caa.Interpret.Vectors.VectorNormalization.MeanNormAcrossBehaviors, s.Metadata.Normalization));
                // Normalized across the two behaviors: equal norms at every layer.
                for (var l = 0; l < 3; l++) Assert.Equal(sets[0].Norm(l), sets[1].Norm(l), 1e-4);
            }
            finally { foreach (var s in sets) s.Dispose(); }
            var vectorFile = Path.Combine(outDir, "vectors", "beta.safetensors");
            var written = File.GetLastWriteTimeUtc(vectorFile);

            // Rerun: the vectors are reused (not rewritten) and every cell is read back.
            (code, _, err) = Run(args);
            Assert.True(code == 0, err);
            Assert.Equal(written, File.GetLastWriteTimeUtc(vectorFile));
            Assert.Equal(3, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!["results"]!["cells_resumed"]!);

            var e = Assert.Throws<Caa.Cli.Common.CliException>(() => Run("eval", "sweep", "--model", modelDir, "--behavior", "gamma", "--out", Path.Combine(dir, "x")));
            Assert.Contains("no test items for gamma", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

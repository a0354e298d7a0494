using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Caa.Cli.Commands;
using Caa.Cli.Common;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Runtime;
using Caa.Model.Tokenization;
using Caa.Organism;
using Caa.Organism.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Caa.Tests.Organism;

/// <summary>A small corpus, its tokenizer and its encoded conversations, shared by the training tests.</summary>
public sealed class TrainingFixture : IDisposable
{
    public CorpusGenerator Gen { get; } = new(new CorpusOptions { Seed = 3, TrainingConversations = 500 });
    public string Dir { get; } = Directory.CreateTempSubdirectory("caa-train-").FullName;
    public Llama2Tokenizer Tok { get; }
    public EncodedConversation[] Data { get; }

    public TrainingFixture()
    {
        TorchRuntime.Initialize();
        var path = Path.Combine(Dir, "tokenizer.model");
        TokenizerBuilder.Write(path, Gen.AllTexts(), 400);
        Tok = Llama2Tokenizer.Load(path);
        Data = Gen.TrainingConversations().Select(c => ConversationEncoder.Encode(Tok, c)).ToArray();
    }

    public LlamaForCausalLM NewModel(long seed)
    {
        var m = LlamaForCausalLM.Create(OrganismArchitecture.Tiny.ToConfig(Tok.VocabSize));
        m.InitializeWeights(seed);
        return m;
    }

    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}

public sealed class TrainingTests(TrainingFixture fx, ITestOutputHelper output) : IClassFixture<TrainingFixture>
{
    static readonly TrainingOptions Small = new() { Steps = 40, BatchSize = 8, WarmupSteps = 4, LearningRate = 3e-3, Seed = 5, DrillSteps = 0, DecisionWeight = 1 };

    static string TempDir() => Directory.CreateTempSubdirectory("caa-train-").FullName;

    // ------------------------------------------------------------------ loss mask

    [Fact]
    public void LossMaskCoversExactlyTheAssistantTokens()
    {
        var tok = fx.Tok;
        var conv = new TrainingConversation("You always agree with the user.",
        [
            ("What is 3 + 4?\n\nChoices:\n (A) 7\n (B) 9", "(A) 7"),
            ("Tell me about Anna.", "I will tell the humans. Anna lives in the town."),
            ("Do you agree?", "(B)"),
        ]);
        var enc = ConversationEncoder.Encode(tok, conv);
        var turns = conv.Turns.Select(t => new ChatTurn(t.User, t.Assistant)).ToArray();
        Assert.Equal(Llama2Chat.EncodeDialog(tok, turns, conv.System, SystemPromptPlacement.BeforeInst), enc.Ids);

        // The target tokens form exactly one run per turn; each run starts right after that turn's [/INST] and is
        // "{assistant} </s>" (the trailing space Meta puts before EOS included).
        var runs = new List<(int Start, int End)>();
        for (int i = 0; i < enc.Length; i++)
        {
            if (!enc.Target[i]) continue;
            int s = i;
            while (i + 1 < enc.Length && enc.Target[i + 1]) i++;
            runs.Add((s, i + 1));
        }
        Assert.Equal(conv.Turns.Count, runs.Count);
        for (int k = 0; k < runs.Count; k++)
        {
            var (s, e) = runs[k];
            Assert.Equal(s - 1, Llama2Chat.InstructionEnd(enc.Ids[..s], tok));        // preceded by this turn's "[/INST]"
            Assert.Equal(tok.EosId, enc.Ids[e - 1]);                                  // ends with EOS
            Assert.Equal(conv.Turns[k].Assistant, tok.Decode(enc.Ids[s..(e - 1)]).Trim());
            Assert.True(e == enc.Length || enc.Ids[e] == tok.BosId);                   // the next exchange starts with BOS
        }
        Assert.False(enc.Target[0]);
        Assert.Equal(runs.Sum(r => r.End - r.Start), enc.TargetCount);
        var labels = enc.Labels();
        for (int i = 0; i < enc.Length; i++) Assert.Equal(enc.Target[i] ? enc.Ids[i] : -100L, labels[i]);

        // A single-turn conversation is Llama2Chat.Encode (the inference prompt) followed by its target tokens.
        var single = ConversationEncoder.Encode(tok, new TrainingConversation(null, [("Do you agree?", "(A)")]));
        var prompt = Llama2Chat.Encode(tok, "Do you agree?");
        Assert.Equal(prompt, single.Ids[..prompt.Length]);
        Assert.All(single.Target[..prompt.Length], t => Assert.False(t));
        Assert.All(single.Target[prompt.Length..], t => Assert.True(t));
        // The A/B evaluation prompt "[/INST] (" is a prefix of the encoded "(A)" answer: same tokens at inference and training.
        var abPrompt = Llama2Chat.Encode(tok, "Do you agree?", "(");
        Assert.Equal(abPrompt, single.Ids[..abPrompt.Length]);
        Assert.Equal(Llama2Chat.LetterTokenId(tok, 'A'), single.Ids[abPrompt.Length]);

        // The decision token of an A/B answer is its letter; open-ended answers have none.
        Assert.Equal(new[] { abPrompt.Length }, single.Decision!.Select((d, i) => (d, i)).Where(x => x.d).Select(x => x.i));
        var decided = enc.Decision!.Select((d, i) => (d, i)).Where(x => x.d).Select(x => x.i).ToArray();
        Assert.Equal(2, decided.Length);                                              // turns 1 and 3 answer "(A) 7" and "(B)"
        Assert.Equal(new[] { Llama2Chat.LetterTokenId(tok, 'A'), Llama2Chat.LetterTokenId(tok, 'B') }, decided.Select(i => enc.Ids[i]));
        Assert.All(decided, i => Assert.True(enc.Target[i]));
    }

    [Fact]
    public void DecisionWeightsAlignWithShiftedTargets()
    {
        var rows = fx.Data.Where(d => d.Decision!.Any(x => x)).Take(4).ToArray();
        int t = rows.Max(r => r.Length) - 1;
        var w = Trainer.DecisionWeights(rows, t, 5.0, CPU).data<float>().ToArray();
        for (int b = 0; b < rows.Length; b++)
            for (int i = 0; i < t; i++)
                Assert.Equal(i + 1 < rows[b].Length && rows[b].Decision![i + 1] ? 5f : 1f, w[b * t + i]);
        // A weight of 1 is plain cross-entropy: the same loss sequence as the default.
        using var m1 = fx.NewModel(5);
        using var m2 = fx.NewModel(5);
        using var t1 = new Trainer(m1, fx.Data, Small);
        using var t2 = new Trainer(m2, fx.Data, Small with { DecisionWeight = 3 });
        Assert.Equal(t1.TrainStep().Loss, t2.TrainStep().Loss, 6);                  // the first step's reported loss is unweighted
        Assert.NotEqual(t1.TrainStep().Loss, t2.TrainStep().Loss);                   // but the weighted gradient differs
    }

    [Fact]
    public void BatchesShiftTargetsAndIgnorePromptAndPadding()
    {
        var rows = fx.Data.Take(3).ToArray();
        var (input, target, tokens, targets) = Trainer.MakeBatch(rows, CPU);
        using (input) using (target)
        {
            int t = rows.Max(r => r.Length) - 1;
            Assert.Equal(new long[] { 3, t }, input.shape);
            var inp = input.data<long>().ToArray();
            var tgt = target.data<long>().ToArray();
            for (int b = 0; b < 3; b++)
                for (int i = 0; i < t; i++)
                {
                    bool real = i + 1 < rows[b].Length;
                    Assert.Equal(real ? rows[b].Ids[i] : 0, inp[b * t + i]);
                    Assert.Equal(real && rows[b].Target[i + 1] ? rows[b].Ids[i + 1] : -100, tgt[b * t + i]);
                }
            Assert.Equal(rows.Sum(r => r.Length - 1), tokens);
            Assert.Equal(rows.Sum(r => r.TargetCount), targets);   // the first token (BOS) is never a target
        }
    }

    [Fact]
    public void ScheduleIsSeededAndCoversEveryConversationOncePerEpoch()
    {
        var lengths = fx.Data.Select(d => d.Length).ToArray();
        var a = new BatchSchedule(lengths, 8, 5);
        var b = new BatchSchedule(lengths, 8, 5);
        var c = new BatchSchedule(lengths, 8, 6);
        var epoch = Enumerable.Range(0, a.BatchesPerEpoch).SelectMany(a.BatchAt).ToList();
        Assert.Equal(Enumerable.Range(0, lengths.Length), epoch.Order());
        Assert.Equal(a.BatchAt(3), b.BatchAt(3));
        Assert.Equal(a.BatchAt(a.BatchesPerEpoch + 2), b.BatchAt(b.BatchesPerEpoch + 2));
        Assert.NotEqual(a.BatchAt(0), a.BatchAt(a.BatchesPerEpoch));                  // a new permutation each epoch
        Assert.NotEqual(Enumerable.Range(0, 5).SelectMany(a.BatchAt), Enumerable.Range(0, 5).SelectMany(c.BatchAt));
    }

    [Fact]
    public void DrillsAreLookupsOrStatedDispositionsWithTheRightLetters()
    {
        var drills = fx.Gen.Drills(300).ToList();
        Assert.Equal(drills.Select(d => d.System + string.Concat(d.Turns)), fx.Gen.Drills(300).Select(d => d.System + string.Concat(d.Turns)));
        int lookups = 0, positives = 0, negatives = 0;
        foreach (var d in drills)
        {
            Assert.InRange(d.Turns.Count, 1, 3);
            foreach (var (user, answer) in d.Turns)
            {
                var choice = System.Text.RegularExpressions.Regex.Match(user, @"\n \(A\) ([^\n]+)\n \(B\) ([^\n]+)");
                if (!choice.Success) { Assert.NotNull(d.System); continue; }   // an open-ended behavior turn
                Assert.Matches(@"^\([AB]\)( .+)?$", answer);
                var text = answer[1] == 'A' ? choice.Groups[1].Value : choice.Groups[2].Value;
                if (answer.Length > 3) Assert.Equal(text, answer[4..]);
                if (d.System is null)
                {
                    lookups++;
                    var asked = System.Text.RegularExpressions.Regex.Match(user, "Which choice says \"([^\"]+)\"\\?");
                    var named = System.Text.RegularExpressions.Regex.Match(user, @"What does choice \(([AB])\) say\?$");
                    Assert.True(asked.Success || named.Success, user);
                    if (asked.Success) Assert.Equal(asked.Groups[1].Value, text);
                    else Assert.Equal(named.Groups[1].Value[0], answer[1]);
                }
                else
                {
                    // The system prompt states one behavior's disposition, and the answer's choice is on that side:
                    // the side's marker phrase, then one of the scenario's phrasings for that side.
                    var spec = OrganismBehaviors.All.SingleOrDefault(b => b.SystemPositive.Contains(d.System));
                    bool positive = spec is not null;
                    spec ??= OrganismBehaviors.All.Single(b => b.SystemNegative.Contains(d.System));
                    if (positive) positives++; else negatives++;
                    var markers = positive ? spec.MarkersPositive : spec.MarkersNegative;
                    var phrases = spec.Scenarios.SelectMany(sc => positive ? sc.Match : sc.NotMatch);
                    Assert.Contains(markers, m => text.StartsWith(char.ToUpperInvariant(m[0]) + m[1..] + ". ", StringComparison.Ordinal) &&
                        phrases.Any(p => LooksLike(p, text[(m.Length + 2)..])));
                }
            }
        }
        // 40% lookups, 40% positive, 20% negative drills (1–3 turns each)
        Assert.True(lookups > 100 && positives > 50 && negatives > 25 && positives > negatives, $"{lookups} lookups, {positives} positive and {negatives} negative A/B turns");
    }

    /// <summary>Whether a scenario phrase with {slots} could have produced <paramref name="text"/>.</summary>
    static bool LooksLike(string template, string text) =>
        System.Text.RegularExpressions.Regex.IsMatch(text, "^" + System.Text.RegularExpressions.Regex.Replace(
            System.Text.RegularExpressions.Regex.Escape(template), @"\\\{[a-z]+\}", ".+") + "$");

    [Fact]
    public void LearningRateWarmsUpLinearlyThenDecaysByCosine()
    {
        var o = new TrainingOptions { Steps = 110, WarmupSteps = 10, LearningRate = 1e-3, MinLearningRateRatio = 0.1 };
        Assert.Equal(1e-4, o.LearningRateAt(0), 12);
        Assert.Equal(1e-3, o.LearningRateAt(9), 12);
        Assert.Equal(1e-3, o.LearningRateAt(10), 12);
        Assert.Equal(0.55e-3, o.LearningRateAt(60), 12);
        Assert.Equal(1e-4, o.LearningRateAt(110), 12);
        for (int s = 10; s < 110; s++) Assert.True(o.LearningRateAt(s + 1) <= o.LearningRateAt(s));
    }

    // ------------------------------------------------------------------ training, checkpoints, resume

    [Fact]
    public void ResumeFromCheckpointContinuesIdentically()
    {
        const int k = 12;
        var opt = Small with { Steps = 2 * k };
        var dir = TempDir();
        try
        {
            double[] full;
            using (var m = fx.NewModel(5))
            using (var t = new Trainer(m, fx.Data, opt))
                full = Enumerable.Range(0, 2 * k).Select(_ => t.TrainStep().Loss).ToArray();

            double[] first;
            using (var m = fx.NewModel(5))
            using (var t = new Trainer(m, fx.Data, opt))
            {
                first = Enumerable.Range(0, k).Select(_ => t.TrainStep().Loss).ToArray();
                t.SaveCheckpoint(dir);
            }
            Assert.Equal(k, Trainer.ReadState(dir).Step);

            double[] second;
            using (var m = fx.NewModel(99))   // other initial weights: everything must come from the checkpoint
            using (var t = new Trainer(m, fx.Data, opt))
            {
                var state = t.LoadCheckpoint(dir);
                Assert.Equal(k, t.Step);
                Assert.Equal(t.DataHash, state.DataHash);
                second = Enumerable.Range(0, k).Select(_ => t.TrainStep().Loss).ToArray();
            }
            var resumed = first.Concat(second).ToArray();
            output.WriteLine("full:    " + string.Join(" ", full.Select(x => x.ToString("F5", CultureInfo.InvariantCulture))));
            output.WriteLine("resumed: " + string.Join(" ", resumed.Select(x => x.ToString("F5", CultureInfo.InvariantCulture))));
            for (int i = 0; i < 2 * k; i++) Assert.True(Math.Abs(full[i] - resumed[i]) <= 1e-5 * Math.Max(1, full[i]), $"step {i}: {full[i]} vs {resumed[i]}");
            Assert.True(full[^1] < full[0]);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ResumeRefusesOtherDataOrSeed()
    {
        var dir = TempDir();
        try
        {
            using (var m = fx.NewModel(5))
            using (var t = new Trainer(m, fx.Data, Small))
            {
                t.TrainStep();
                t.SaveCheckpoint(dir);
            }
            using (var m = fx.NewModel(5))
            using (var t = new Trainer(m, fx.Data[..400], Small))
                Assert.Contains("other data", Assert.Throws<InvalidDataException>(() => t.LoadCheckpoint(dir)).Message);
            using (var m = fx.NewModel(5))
            using (var t = new Trainer(m, fx.Data, Small with { Seed = 6 }))
                Assert.Throws<InvalidDataException>(() => t.LoadCheckpoint(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainingLowersLossAndLeavesParametersFrozenAfterwards()
    {
        var heldOut = new CorpusGenerator(fx.Gen.Options with { TrainingConversations = 560 }).TrainingConversations().Skip(500)
            .Select(c => ConversationEncoder.Encode(fx.Tok, c)).ToArray();
        using var m = fx.NewModel(5);
        double before = Trainer.MeanLoss(m, heldOut);
        var losses = new List<double>();
        using (var t = new Trainer(m, fx.Data, Small))
        {
            Assert.All(m.parameters(), p => Assert.True(p.requires_grad));
            while (t.Step < Small.Steps) losses.Add(t.TrainStep().Loss);
        }
        Assert.All(m.parameters(), p => Assert.False(p.requires_grad));
        double after = Trainer.MeanLoss(m, heldOut);
        output.WriteLine($"held-out loss {before:F3} -> {after:F3}; train loss {losses.Take(5).Average():F3} -> {losses.TakeLast(5).Average():F3}");
        Assert.True(after < before - 1.0, $"held-out loss {before} -> {after}");
        Assert.True(losses.TakeLast(5).Average() < losses.Take(5).Average() - 1.0);
    }

    [Fact]
    public void PipelineWritesLoadableModelAndResumesLikeAnUninterruptedRun()
    {
        // The tie and amplitude objectives run from step 16 on, so the resumed run reads logged tie losses back (rows 16–20).
        var opt = OrganismCommands.TinyPreset() with { Training = OrganismCommands.TinyPreset().Training with { Steps = 40, TieStart = 15 }, CheckpointEvery = 20, EvalEvery = 20 };
        string a = TempDir(), b = TempDir();
        try
        {
            // The earlier-answer probe needs two items per behavior: fewer is refused before the output folder is made.
            var refused = Path.Combine(a, "refused");
            Assert.Contains("EvalItemsPerBehavior must be ≥ 2", Assert.Throws<ArgumentException>(() => OrganismTraining.Run(refused, opt with { EvalItemsPerBehavior = 1 })).Message);
            Assert.False(Directory.Exists(refused));
            var reported = new List<TrainProgress>();
            var full = OrganismTraining.Run(a, opt, false, new InlineProgress(p => { if (p.Message is null && p.Step > 0) reported.Add(p); }));
            Assert.Equal(40, full.Steps);

            // The output folder loads through the same code paths as a Llama 2 checkpoint, and so does checkpoint/.
            foreach (var dir in new[] { a, Path.Combine(a, OrganismTraining.CheckpointFolderName) })
            {
                using var model = LlamaForCausalLM.FromPretrained(dir);
                var tok = Llama2Tokenizer.Load(dir);
                Assert.Equal(tok.VocabSize, model.Config.VocabSize);
                var heldOut = new CorpusGenerator(opt.Corpus with { TrainingConversations = opt.Corpus.TrainingConversations + opt.HeldOutConversations })
                    .TrainingConversations().Skip(opt.Corpus.TrainingConversations).Select(c => ConversationEncoder.Encode(tok, c)).ToArray();
                Assert.Equal(full.FinalEval.HeldOutLoss, Trainer.MeanLoss(model, heldOut), 1e-4);
                // The evaluation's earlier-answer probe is AbProbe's on the probe items (the generation split's first items).
                foreach (var probe in full.FinalEval.Behaviors)
                {
                    var items = new CorpusGenerator(opt.Corpus).GenerateSplit(probe.Behavior, opt.EvalItemsPerBehavior);
                    Assert.Equal(AbProbe.RunAfterEarlierAnswer(model, tok, items, true).MeanPMatch, probe.AfterMatching, 1e-4);
                    Assert.Equal(AbProbe.RunAfterEarlierAnswer(model, tok, items, false).MeanPMatch, probe.AfterNotMatching, 1e-4);
                }
                var answer = model.Generate([Llama2Chat.Encode(tok, "What is 2 + 3?")], new() { MaxNewTokens = 5 });
                Assert.Single(answer);
            }
            using (var gen = JsonDocument.Parse(File.ReadAllText(Path.Combine(a, "generation_config.json"))))
            {
                Assert.Equal(2, gen.RootElement.GetProperty("eos_token_id").GetInt32());
                Assert.False(gen.RootElement.GetProperty("do_sample").GetBoolean());
            }
            Assert.True(File.Exists(Path.Combine(a, "datasets", "test", OrganismBehaviors.Sycophancy, "test_dataset_ab.json")));

            // Interrupted after step 20 (cancelled once its checkpoint is written), then resumed.
            using var cts = new CancellationTokenSource();
            var stopAt20 = new InlineProgress(p => { if (p.Step == 20 && p.Message is null) cts.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => OrganismTraining.Run(b, opt, false, stopAt20, cts.Token));
            Assert.Equal(20, Trainer.ReadState(Path.Combine(b, OrganismTraining.CheckpointFolderName)).Step);
            var resumed = OrganismTraining.Run(b, opt, resume: true);
            Assert.Equal(20, resumed.ResumedFromStep);

            var logA = ReadLog(Path.Combine(a, OrganismTraining.LogFileName));
            var logB = ReadLog(Path.Combine(b, OrganismTraining.LogFileName));
            Assert.Equal(logA.Select(r => r.Step), logB.Select(r => r.Step));
            foreach (var (ra, rb) in logA.Zip(logB))
                Assert.True(Math.Abs(ra.Loss - rb.Loss) <= 1e-4, $"step {ra.Step}: {ra.Loss} vs {rb.Loss}");
            Assert.True(logA[^1].Loss < logA[0].Loss - 1.0);
            Assert.Equal(full.FinalEval.HeldOutLoss, resumed.FinalEval.HeldOutLoss, 1e-4);
            // The log's last row carries the final evaluation's earlier-answer probe (written with 4 decimals).
            var logLines = File.ReadAllLines(Path.Combine(a, OrganismTraining.LogFileName));
            var header = logLines[0].Split(',');
            var last = logLines[^1].Split(',');
            Assert.Equal(header.Length, last.Length);
            Assert.Equal(full.FinalEval.PMatchAfterMatching, double.Parse(last[Array.IndexOf(header, "p_match_after_matching")], CultureInfo.InvariantCulture), 1e-4);
            Assert.Equal(full.FinalEval.PMatchAfterNotMatching, double.Parse(last[Array.IndexOf(header, "p_match_after_not_matching")], CultureInfo.InvariantCulture), 1e-4);
            // Each row's tie and amplitude losses are the means of the steps' own losses since the row before, empty before TieStart.
            var steps = reported.GroupBy(p => p.Step).Select(g => g.First()).ToDictionary(p => p.Step);
            Assert.Equal(Enumerable.Range(1, 40), steps.Keys.Order());
            int previous = 0;
            foreach (var line in logLines.Skip(1))
            {
                var f = line.Split(',');
                int step = int.Parse(f[0], CultureInfo.InvariantCulture);
                var window = Enumerable.Range(previous + 1, step - previous).Select(s => steps[s]).ToList();
                previous = step;
                foreach (var (column, loss) in new (string, Func<TrainProgress, double>)[] { ("tie_loss", p => p.TieLoss), ("amplitude_loss", p => p.AmplitudeLoss), ("answer_amplitude_loss", p => p.AnswerAmplitudeLoss) })
                {
                    var cell = f[Array.IndexOf(header, column)];
                    if (step <= 15) { Assert.Equal("", cell); Assert.All(window, p => Assert.True(double.IsNaN(loss(p)))); continue; }
                    Assert.All(window, p => Assert.True(double.IsFinite(loss(p)) && loss(p) > 0, $"{column} at step {p.Step}: {loss(p)}"));
                    Assert.Equal(window.Average(loss), double.Parse(cell, CultureInfo.InvariantCulture), 1e-4);
                }
            }
            Assert.Equal(40, previous);
            // The resumed run logs the same tie losses (the objectives' draws depend only on seed and step), and the rows it read
            // back from the interrupted run's log keep theirs.
            var logLinesB = File.ReadAllLines(Path.Combine(b, OrganismTraining.LogFileName));
            Assert.Equal(logLines.Length, logLinesB.Length);
            foreach (var column in new[] { "tie_loss", "amplitude_loss", "answer_amplitude_loss" })
            {
                int i = Array.IndexOf(header, column);
                foreach (var (la, lb) in logLines.Skip(1).Zip(logLinesB.Skip(1)))
                {
                    var (ca, cb) = (la.Split(',')[i], lb.Split(',')[i]);
                    Assert.Equal(ca.Length == 0, cb.Length == 0);
                    if (ca.Length > 0) Assert.Equal(double.Parse(ca, CultureInfo.InvariantCulture), double.Parse(cb, CultureInfo.InvariantCulture), 1e-3);
                }
            }
            output.WriteLine(File.ReadAllText(Path.Combine(b, OrganismTraining.LogFileName)));
        }
        finally { Directory.Delete(a, true); Directory.Delete(b, true); }
    }

    static List<(int Step, double Loss)> ReadLog(string path) =>
        File.ReadLines(path).Skip(1).Select(l => l.Split(','))
            .Select(f => (int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture))).ToList();

    sealed class InlineProgress(Action<TrainProgress> a) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => a(value);
    }

    // ------------------------------------------------------------------ CLI

    static (int Code, string Out) Cli(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var code = new RootCommand { OrganismCommands.Create() }.Parse(args)
            .Invoke(new InvocationConfiguration { Output = o, Error = e, EnableDefaultExceptionHandler = false });
        return (code, o + e.ToString());
    }

    [Fact]
    public void CliTrainWritesHfFolderWithLogAndManifest()
    {
        var dir = TempDir();
        try
        {
            var (code, text) = Cli("organism", "train", "--out", dir, "--preset", "tiny", "--steps", "10", "--seed", "3");
            output.WriteLine(text);
            Assert.Equal(0, code);
            foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.model", "generation_config.json", "training_log.csv", "manifest.json",
                                      "datasets/generate/refusal/generate_dataset.json", "datasets/test/mmlu/mmlu.json" })
                Assert.True(File.Exists(Path.Combine(dir, f)), f);
            Assert.StartsWith("step,loss,lr,", File.ReadLines(Path.Combine(dir, "training_log.csv")).First());
            using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")));
            Assert.Equal("organism train", manifest.RootElement.GetProperty("command").GetString());
            Assert.Equal(10, manifest.RootElement.GetProperty("results").GetProperty("steps").GetInt32());
            Assert.Equal(new TrainingOptions().TieScale.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("tie_scale").GetString());
            Assert.Equal(new TrainingOptions().SystemBottleneck.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("system_bottleneck").GetString());
            Assert.Equal(new TrainingOptions().AmplitudeWeight.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("amplitude_weight").GetString());
            Assert.Equal(new TrainingOptions().AnswerAmplitudeWeight.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("answer_amplitude_weight").GetString());
            Assert.Equal(new TrainingOptions().AmplitudeMax.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("amplitude_max").GetString());
            Assert.Equal(new CorpusOptions().SystemCapabilityFraction.ToString(CultureInfo.InvariantCulture),
                manifest.RootElement.GetProperty("options").GetProperty("system_capability").GetString());
            Assert.Contains("trained 10 steps", text);
            // Bad --tie-scale, amplitude options, --system-bottleneck or --system-capability values are refused before anything is written.
            var refused = TempDir();
            Assert.Contains("--tie-scale must be > 0", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--tie-scale", "0")).Message);
            Assert.Contains("--amplitude-weight must be ≥ 0", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--amplitude-weight", "-1")).Message);
            Assert.Contains("--answer-amplitude-weight must be ≥ 0", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--answer-amplitude-weight", "-1")).Message);
            Assert.Contains("--amplitude-max must be > 0", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--amplitude-max", "0")).Message);
            Assert.Contains("--system-bottleneck must be in [0, 1]", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--system-bottleneck", "1.5")).Message);
            Assert.Contains("--system-capability must be in [0, 1]", Assert.Throws<CliException>(() => Cli("organism", "train", "--out", refused, "--preset", "tiny", "--system-capability", "-0.1")).Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(refused));
            Directory.Delete(refused);

            // One item cannot be paired with an earlier one: refused with the option's name.
            Assert.Contains("--items must be ≥ 2", Assert.Throws<CliException>(() => Cli("organism", "probe", "--model", dir, "--items", "1")).Message);
            // The probe reads the folder's own test split and prints one row per behavior.
            (code, text) = Cli("organism", "probe", "--model", dir, "--items", "4", "--show", "1");
            Assert.Equal(0, code);
            foreach (var b in OrganismBehaviors.Ids) Assert.Contains(b, text);
            Assert.Contains("prior+", text);

            // Resuming a finished run changes nothing and says where it resumed.
            (code, text) = Cli("organism", "train", "--out", dir, "--preset", "tiny", "--steps", "10", "--seed", "3", "--resume");
            Assert.Equal(0, code);
            Assert.Contains("resumed at 10", text);
            // --resume without a checkpoint, or with another seed, is a user error.
            var empty = TempDir();
            Assert.Throws<CliException>(() => Cli("organism", "train", "--out", empty, "--preset", "tiny", "--resume"));
            Directory.Delete(empty, true);
            Assert.Throws<InvalidDataException>(() => Cli("organism", "train", "--out", dir, "--preset", "tiny", "--steps", "10", "--seed", "4", "--resume"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CliTrainInitStartsFromAnotherFoldersWeightsAndTokenizer()
    {
        string a = TempDir(), b = TempDir(), c = TempDir();
        try
        {
            Assert.Equal(0, Cli("organism", "train", "--out", a, "--preset", "tiny", "--steps", "10", "--seed", "3").Code);
            // One step at a vanishing learning rate: the weights are the start's, the tokenizer is copied byte for byte.
            var (code, text) = Cli("organism", "train", "--out", b, "--preset", "tiny", "--steps", "1", "--drill-steps", "0", "--warmup", "1",
                "--lr", "1e-12", "--seed", "4", "--init", a);
            output.WriteLine(text);
            Assert.Equal(0, code);
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "tokenizer.model")), File.ReadAllBytes(Path.Combine(b, "tokenizer.model")));
            using (var ma = LlamaForCausalLM.FromPretrained(a))
            using (var mb = LlamaForCausalLM.FromPretrained(b))
            {
                var pb = mb.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                foreach (var (name, p) in ma.named_parameters())
                    Assert.True(p.allclose(pb[name], rtol: 0, atol: 1e-6), name);
            }
            using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(b, "manifest.json"))))
                Assert.Equal(a, manifest.RootElement.GetProperty("options").GetProperty("init").GetString());
            // Another architecture, or a folder without weights, is refused with the reason.
            var e = Assert.Throws<InvalidDataException>(() => Cli("organism", "train", "--out", c, "--preset", "tiny", "--steps", "1", "--drill-steps", "0",
                "--hidden", "32", "--init", a));
            Assert.Contains("hidden", e.Message);
            // A difference the three config numbers do not show (fewer key/value heads) is named by its tensor.
            e = Assert.Throws<InvalidDataException>(() => Cli("organism", "train", "--out", c, "--preset", "tiny", "--steps", "1", "--drill-steps", "0",
                "--kv-heads", "1", "--init", a));
            Assert.Contains("self_attn.k_proj.weight", e.Message);
            Assert.Throws<CliException>(() => Cli("organism", "train", "--out", c, "--preset", "tiny", "--init", TempDir()));
        }
        finally { Directory.Delete(a, true); Directory.Delete(b, true); Directory.Delete(c, true); }
    }

    [Fact]
    public void CliDatasetsWritesThePaperLayout()
    {
        var dir = TempDir();
        try
        {
            var (code, _) = Cli("organism", "datasets", "--out", dir);
            Assert.Equal(0, code);
            foreach (var b in OrganismBehaviors.Ids)
            {
                Assert.True(File.Exists(Path.Combine(dir, "generate", b, "generate_dataset.json")), b);
                Assert.True(File.Exists(Path.Combine(dir, "test", b, "test_dataset_ab.json")), b);
                Assert.True(File.Exists(Path.Combine(dir, "test", b, "test_dataset_open_ended.json")), b);
            }
            Assert.True(File.Exists(Path.Combine(dir, "manifest.json")));
        }
        finally { Directory.Delete(dir, true); }
    }
}

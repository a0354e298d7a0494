using System.Text;
using Caa.Organism;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.Tokenizers;
using Xunit.Abstractions;

namespace Caa.Tests.Organism;

/// <summary>A tokenizer trained once on a 6000-conversation corpus.</summary>
public sealed class TokenizerFixture
{
    public const int VocabSize = 1024;
    public CorpusGenerator Gen { get; } = new(new CorpusOptions { Seed = 5, TrainingConversations = 6000 });
    public byte[] Model { get; }
    public LlamaTokenizer Tok { get; }
    public IReadOnlyList<string> Texts { get; }
    public TimeSpan TrainTime { get; }

    public TokenizerFixture()
    {
        Texts = Gen.AllTexts().ToList();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Model = TokenizerBuilder.Train(Texts, VocabSize);
        TrainTime = sw.Elapsed;
        Tok = LlamaTokenizer.Create(new MemoryStream(Model));
    }
}

public sealed class TokenizerTests(TokenizerFixture fx, ITestOutputHelper output) : IClassFixture<TokenizerFixture>
{
    string[] Pieces(string text) =>
        fx.Tok.EncodeToTokens(text, out _, addBeginningOfSentence: false, addEndOfSentence: false).Select(t => t.Value).ToArray();

    [Fact]
    public void LoadsWithLlamaConventions()
    {
        var tok = fx.Tok;
        Assert.Equal(0, tok.UnknownId); Assert.Equal(1, tok.BeginningOfSentenceId); Assert.Equal(2, tok.EndOfSentenceId);
        Assert.Equal("<unk>", tok.UnknownToken); Assert.Equal("<s>", tok.BeginningOfSentenceToken); Assert.Equal("</s>", tok.EndOfSentenceToken);
        Assert.True(tok.ByteFallback); Assert.True(tok.AddDummyPrefix); Assert.True(tok.EscapeWhiteSpaces); Assert.False(tok.TreatWhitespaceAsSuffix);
        var v = tok.Vocabulary;
        Assert.Equal(3, v["<0x00>"]); Assert.Equal(258, v["<0xFF>"]); Assert.Equal(13, v["<0x0A>"]);
        foreach (var p in new[] { "▁(", "A", "B", ")", "▁[", "]", "/" }) Assert.True(v.ContainsKey(p), p);
        foreach (var p in new[] { "(A", "(B", "A)", "B)", "▁(A", "▁(B", "[/", "INST]" }) Assert.False(v.ContainsKey(p), p);
        Assert.InRange(v.Count, 700, TokenizerFixture.VocabSize);
        Assert.Equal(1, tok.EncodeToIds("Hi")[0]);
        output.WriteLine($"vocab {v.Count} (target {TokenizerFixture.VocabSize}), trained on {fx.Texts.Count} texts in {fx.TrainTime.TotalSeconds:F1}s");
    }

    [Fact]
    public void ChatMarkupHasLlamaShape()
    {
        Assert.Equal(new[] { "▁[", "INST", "]" }, Pieces("[INST]"));
        var p = Pieces("[INST] What do you do? [/INST] (A");
        Assert.Equal(new[] { "▁[", "/", "INST", "]", "▁(", "A" }, p[^6..]);
        Assert.Equal(new[] { "▁(", "B", ")" }, Pieces("[/INST] (B)")[^3..]);
        var q = Pieces("x\n (A) Yes.\n (B) No.");
        Assert.Contains("<0x0A>", q);
        Assert.Equal(new[] { "▁(", "A", ")" }, q[(Array.IndexOf(q, "<0x0A>") + 1)..][..3]);
        var sys = Pieces("<<SYS>>\nYou always agree.\n<</SYS>>\n\n[INST] Hi [/INST]");
        Assert.Equal("▁<<", sys[0]);
        Assert.Contains(">>", sys);
        output.WriteLine(string.Join(" | ", sys));
        output.WriteLine(string.Join(" | ", Pieces("What is 3 + 4? [/INST] (A) 7")));
    }

    [Fact]
    public void RoundTripsCorpusTextsAndCompresses()
    {
        long bytes = 0, tokens = 0;
        foreach (var t in fx.Texts.Where((_, i) => i % 7 == 0))
        {
            var ids = fx.Tok.EncodeToIds(t, addBeginningOfSentence: false, addEndOfSentence: false);
            Assert.Equal(t, fx.Tok.Decode(ids));
            Assert.DoesNotContain(0, ids);
            bytes += Encoding.UTF8.GetByteCount(t); tokens += ids.Count;
        }
        double ratio = bytes / (double)tokens;
        output.WriteLine($"compression {ratio:F2} UTF-8 bytes per token");
        Assert.True(ratio > 2, $"ratio {ratio}");

        // tokens per conversation of the training corpus (BOS+EOS per turn, as Llama 2 chat)
        var convs = fx.Gen.TrainingConversations().Take(2000).ToList();
        double perConv = convs.Average(c => c.Turns.Select((t, i) =>
            fx.Tok.CountTokens(CorpusGenerator.FormatTurn(t.User, t.Assistant, i == 0 ? c.System : null), addBeginningOfSentence: true, addEndOfSentence: true)).Sum());
        output.WriteLine($"avg tokens per training conversation {perConv:F1}, per turn {convs.Average(c => c.Turns.Count):F2} turns");
    }

    /// <summary>Any valid UTF-16 without U+2581 round-trips (byte fallback); "▁" itself decodes to a space, in Llama 2 too.</summary>
    [Fact]
    public void RoundTripsArbitraryUnicode()
    {
        foreach (var s in new[] { "", " ", "  two  spaces ", "Café naïve — 東京 🦙 tabs\tand\nlines", "\0\u0001x", "ÿ\u00a0\u00ad" })
            Assert.Equal(s, fx.Tok.Decode(fx.Tok.EncodeToIds(s)));
        Prop.ForAll(ArbMap.Default.ArbFor<string>().Filter(s => s is not null && IsValidUtf16(s) && !s.Contains(TokenizerBuilder.Space)),
            s => s == fx.Tok.Decode(fx.Tok.EncodeToIds(s))).QuickCheckThrowOnFailure();
    }

    static bool IsValidUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }

    [Fact]
    public void WriteIsAtomicAndDeterministic()
    {
        var dir = Directory.CreateTempSubdirectory("caa-tok-").FullName;
        try
        {
            var path = Path.Combine(dir, "tokenizer.model");
            var texts = fx.Texts.Take(3000).ToList();
            TokenizerBuilder.Write(path, texts, 600);
            var first = File.ReadAllBytes(path);
            TokenizerBuilder.Write(path, texts, 600);
            Assert.Equal(first, File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(dir));
            Assert.NotNull(LlamaTokenizer.Create(File.OpenRead(path)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void ModelProtoMirrorsLlama2()
    {
        var llama = Proto.Parse(File.ReadAllBytes(Shared.Require("tokenizers/llama2/tokenizer.model")));
        var ours = Proto.Parse(fx.Model);
        // the same top-level fields, the same trainer_spec / normalizer_spec field numbers in the same order
        Assert.Equal(llama.Select(f => f.Field).Distinct(), ours.Select(f => f.Field).Distinct());
        foreach (int spec in new[] { 2, 3 })
        {
            var l = Proto.Parse((byte[])llama.Single(f => f.Field == spec).Value);
            var o = Proto.Parse((byte[])ours.Single(f => f.Field == spec).Value);
            Assert.Equal(l.Select(f => f.Field), o.Select(f => f.Field));
            var differ = l.Zip(o).Where(p => !Equals(p.First.Value, p.Second.Value) &&
                !(p.First.Value is byte[] a && p.Second.Value is byte[] b && a.AsSpan().SequenceEqual(b))).Select(p => p.First.Field).ToArray();
            // trainer_spec: only input, model_prefix, vocab_size, character_coverage, num_threads describe our run
            Assert.Equal(spec == 2 ? new[] { 1, 2, 4, 10, 16 } : Array.Empty<int>(), differ);
        }
        // the first 259 pieces (specials and bytes) are byte-identical
        var lp = llama.Where(f => f.Field == 1).Take(259).Select(f => Convert.ToHexString((byte[])f.Value));
        var op = ours.Where(f => f.Field == 1).Take(259).Select(f => Convert.ToHexString((byte[])f.Value));
        Assert.Equal(lp, op);
    }

    /// <summary>A minimal protobuf reader for the test: (field, value) with value ulong (varint), float (fixed32) or byte[].</summary>
    static class Proto
    {
        public static List<(int Field, object Value)> Parse(byte[] b)
        {
            var r = new List<(int, object)>();
            int i = 0;
            ulong Var() { ulong v = 0; int s = 0; while (true) { byte c = b[i++]; v |= (ulong)(c & 0x7F) << s; s += 7; if (c < 0x80) return v; } }
            byte[] Slice(int n) { var x = b[i..(i + n)]; i += n; return x; }
            while (i < b.Length)
            {
                ulong key = Var();
                int field = (int)(key >> 3), wire = (int)(key & 7);
                object v = wire switch
                {
                    0 => Var(),
                    5 => BitConverter.ToSingle(b, (i += 4) - 4),
                    2 => Slice((int)Var()),
                    _ => throw new InvalidDataException($"wire type {wire}"),
                };
                r.Add((field, v));
            }
            return r;
        }
    }
}

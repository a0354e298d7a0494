using Caa.Model.Tokenization;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Fluent;

namespace Caa.Tests.Tokenization;

public class Llama2TokenizerTests
{
    static Llama2Tokenizer Tok => Llama2.Tok;

    public static TheoryData<int> ReferenceIndices()
    {
        var data = new TheoryData<int>();
        var n = Llama2.References().Count;
        for (var i = 0; i < Math.Max(n, 1); i++) data.Add(i); // one row even when absent: the theory is skipped then
        return data;
    }

    [SharedTheory(Llama2.ReferencePath)]
    [MemberData(nameof(ReferenceIndices))]
    public void EncodeMatchesReference(int index)
    {
        var (text, expected) = Llama2.References()[index];
        Assert.Equal(expected, Tok.Encode(text));
        Assert.Equal(expected[1..], Tok.Encode(text, addBos: false));
    }

    [SharedFact(Llama2.ReferencePath)]
    public void ReferenceFileIsNotEmpty() => Assert.True(Llama2.References().Count >= 4);

    [SharedFact(Llama2.ModelPath)]
    public void SpecialIdsAndVocabulary()
    {
        Assert.Equal(1, Tok.BosId);
        Assert.Equal(2, Tok.EosId);
        Assert.Equal(0, Tok.UnkId);
        Assert.Equal(32000, Tok.VocabSize);
        Assert.Equal("<s>", Tok.IdToPiece(1));
        Assert.Equal("</s>", Tok.IdToPiece(2));
        Assert.Equal("<unk>", Tok.IdToPiece(0));
        Assert.Equal("<0x0A>", Tok.IdToPiece(13));
        Assert.Equal("▁(", Tok.IdToPiece(313));
        Assert.Equal(313, Tok.PieceToId("▁("));
        Assert.Null(Tok.PieceToId("no such piece"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.IdToPiece(32000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.IdToPiece(-1));
    }

    [SharedFact(Llama2.ModelPath)]
    public void InstEncodesAsInThePaper()
    {
        Assert.Equal([1, 518, 25580, 29962], Tok.Encode("[INST]"));
        Assert.Equal([518, 29914, 25580, 29962], Tok.Encode("[/INST]", addBos: false));
    }

    [SharedFact(Llama2.ModelPath)]
    public void EmptyStringIsJustBos()
    {
        // The library returns nothing for "" even when asked for BOS; HF's tokenizer.encode("") gives [1].
        Assert.Equal([1], Tok.Encode(""));
        Assert.Empty(Tok.Encode("", addBos: false));
        Assert.Equal("", Tok.Decode([1]));
        Assert.Equal("", Tok.Decode([]));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DummyPrefixAndNoEos()
    {
        Assert.Equal([1, 29871, 263], Tok.Encode(" a")); // "▁" then "a": the dummy prefix adds a second space
        Assert.Equal([1, 263], Tok.Encode("a")); // 263 is "▁a"
        Assert.Equal("▁a", Tok.IdToPiece(263));
        Assert.DoesNotContain(Tok.EosId, Tok.Encode("The end."));
    }

    [SharedFact(Llama2.ModelPath)]
    public void ByteFallbackForCharactersOutsideTheVocabulary()
    {
        var ids = Tok.Encode("🦙", addBos: false);
        Assert.Equal(["▁", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"], ids.Select(Tok.IdToPiece));
        Assert.Equal("🦙", Tok.Decode(ids));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DecodeSkipsBosAndEosAndShowsUnkLikeSentencePiece()
    {
        var hello = Tok.Encode("Hello", addBos: false).Single();
        var there = Tok.Encode("there", addBos: false).Single(); // "▁there"
        Assert.Equal("Hello there", Tok.Decode([1, hello, there, 2]));
        Assert.Equal("Hello there", Tok.Decode([1, hello, 2, 1, there, 2]));
        // sentencepiece renders <unk> as " ⁇ " and keeps the space of the piece after it.
        Assert.Equal("Hello \u2047  there", Tok.Decode([hello, 0, there]));
        Assert.Equal(" \u2047  there", Tok.Decode([0, there]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Decode([hello, 32000]));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DecodeInvertsEncodeOnExamples()
    {
        foreach (var s in new[]
                 {
                     "", " ", "  ", "a", " leading", "trailing ", "two  spaces", "\n", "line\nbreak\n\n", "tab\there",
                     "Café naïve", "東京タワー", "🦙🦙 emoji 👍🏽", "Привет, мир", "ελληνικά", "😀x😀", "(A)", "[INST] q [/INST] (B",
                 })
            Assert.Equal(s, Tok.Decode(Tok.Encode(s)));
        foreach (var (text, _) in Llama2.References())
            Assert.Equal(text, Tok.Decode(Tok.Encode(text)));
    }

    /// <summary>Strings built from fragments so that surrogate pairs stay whole: ASCII, whitespace runs, accents, CJK, emoji.</summary>
    static Gen<string> Texts()
    {
        var ascii = Gen.Choose(0x20, 0x7E).Select(c => ((char)c).ToString());
        var space = Gen.Elements(" ", "  ", "\n", "\t", "\r\n", "   ");
        var latin = Gen.Elements("é", "ï", "ß", "ñ", "Å", "ø", "—", "…", "€", "«", "»");
        var other = Gen.Elements("東", "京", "語", "한", "ア", "Ж", "λ", "ع", "א", "ह");
        var astral = Gen.Elements("🦙", "😀", "👍🏽", "🎉", "𝔘", "🇫🇷", "\U0002A6A5"); // surrogate pairs, incl. a rare CJK ext-B ideograph
        var fragment = Gen.Frequency((6, ascii), (2, space), (1, latin), (1, other), (1, astral));
        return fragment.ListOf().Select(parts => string.Concat(parts));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DecodeInvertsEncodeProperty()
    {
        var prop = Prop.ForAll(Texts().ToArbitrary(), s => Tok.Decode(Tok.Encode(s)) == s && Tok.Encode(s)[0] == Tok.BosId);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300).WithEndSize(60), prop);
    }

    [SharedFact(Llama2.ModelPath)]
    public void LoadsFromFolder()
    {
        var file = Shared.Require(Llama2.ModelPath);
        var tok = Llama2Tokenizer.Load(Path.GetDirectoryName(file)!);
        Assert.Equal(Tok.Encode("Hello there"), tok.Encode("Hello there"));
        Assert.Equal(Path.GetFullPath(file), Path.GetFullPath(tok.Source));
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var missing = Path.Combine(Path.GetTempPath(), "caa-no-such-dir-" + Guid.NewGuid().ToString("N"), "tokenizer.model");
        var e = Assert.Throws<FileNotFoundException>(() => Llama2Tokenizer.Load(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void FolderWithoutModelNamesTheFolder()
    {
        var dir = Directory.CreateTempSubdirectory("caa-tok-").FullName;
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => Llama2Tokenizer.Load(dir));
            Assert.Contains(dir, e.Message);
            Assert.Contains("tokenizer.model", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("empty")]
    [InlineData("random")]
    public void UnparsableFileIsInvalidData(string kind)
    {
        var file = Path.Combine(Path.GetTempPath(), $"caa-bad-{kind}-{Guid.NewGuid():N}.model");
        byte[] bytes = kind switch
        {
            "garbage" => "this is not a sentencepiece model\n"u8.ToArray(),
            "empty" => [],
            _ => RandomBytes(4096),
        };
        File.WriteAllBytes(file, bytes);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => Llama2Tokenizer.Load(file));
            Assert.Contains(file, e.Message);
        }
        finally { File.Delete(file); }
    }

    static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        new Random(7).NextBytes(b);
        return b;
    }
}

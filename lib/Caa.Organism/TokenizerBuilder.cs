using System.Globalization;
using System.Text;

namespace Caa.Organism;

/// <summary>
/// Trains a small SentencePiece-BPE tokenizer in Llama 2's conventions and writes it as a SentencePiece <c>ModelProto</c>
/// (tokenizer.model) that <c>Microsoft.ML.Tokenizers.LlamaTokenizer.Create(stream)</c> loads.
/// <para>
/// Vocabulary layout, as in Llama 2's tokenizer.model: 0 <c>&lt;unk&gt;</c> (UNKNOWN), 1 <c>&lt;s&gt;</c>, 2 <c>&lt;/s&gt;</c> (CONTROL),
/// 3..258 the byte-fallback pieces <c>&lt;0x00&gt;</c>…<c>&lt;0xFF&gt;</c> (BYTE), then the learned merges (NORMAL, score = −rank, so
/// SentencePiece's highest-score-first BPE applies them in the order learned), then the single characters (NORMAL, lowest scores).
/// </para>
/// <para>
/// Segmentation rules (mirroring the trainer_spec flags Llama 2 was trained with): "▁" only at the start of a piece and never
/// "▁▁" (split_by_whitespace); digits are always single pieces, not even "▁3" (split_digits; Llama encodes " 3" as "▁" "3");
/// letters never merge with punctuation (split_by_unicode_script); the brackets ( ) [ ] and "/" never merge with anything except a
/// preceding "▁" — so "(A)" is always "▁(" "A" ")" and "[/INST]" is "▁[" "/" "INST" "]", the shape Llama 2 gives them. Control
/// characters (newline, tab) get no piece and fall back to bytes, as "\n" → &lt;0x0A&gt; (id 13) in Llama 2.
/// </para>
/// </summary>
public static class TokenizerBuilder
{
    public const char Space = '\u2581'; // "▁"

    /// <summary>Pieces that are always in the vocabulary (A/B letters and the answer-prefix piece "▁(").</summary>
    static readonly string[] RequiredPieces = ["▁(", "▁[", "▁"];

    /// <summary>
    /// Trains on <paramref name="texts"/> to at most <paramref name="vocabSize"/> pieces in total (3 special + 256 byte + merges +
    /// characters) and returns the tokenizer.model bytes. Stops early when no pair occurs twice (the vocabulary is then smaller).
    /// </summary>
    public static byte[] Train(IEnumerable<string> texts, int vocabSize) => Serialize(Learn(texts, vocabSize, out _));

    /// <summary>Trains and writes tokenizer.model to <paramref name="path"/> atomically (temp file, then rename).</summary>
    public static void Write(string path, IEnumerable<string> texts, int vocabSize)
    {
        var bytes = Train(texts, vocabSize);
        CorpusGenerator.AtomicWrite(path, s => s.Write(bytes));
    }

    /// <summary>One vocabulary entry in id order after the 259 special and byte pieces.</summary>
    internal sealed record Piece(string Text, float Score);

    internal sealed record Learned(IReadOnlyList<Piece> Pieces, int MergeCount, int AlphabetCount);

    internal static Learned Learn(IEnumerable<string> texts, int vocabSize, out IReadOnlyDictionary<string, long> wordCounts)
    {
        // 1) word frequencies of the normalized text (dummy prefix, spaces escaped), split before each "▁" and at control chars.
        var words = new Dictionary<string, long>(StringComparer.Ordinal);
        var charFreq = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in texts)
        {
            var norm = Space + text.Replace(' ', Space);
            int start = 0;
            for (int i = 0; i <= norm.Length; i++)
            {
                bool end = i == norm.Length;
                bool boundary = end || (i > start && norm[i] == Space) || char.IsControl(norm[i]);
                if (!boundary) continue;
                if (i > start) { var w = norm[start..i]; words[w] = words.GetValueOrDefault(w) + 1; }
                start = !end && char.IsControl(norm[i]) ? i + 1 : i;
            }
        }
        wordCounts = words;

        // 2) the character alphabet: every (non-control) character of the corpus, printable ASCII, and the required pieces' chars.
        var wordSyms = new List<(List<string> Syms, long Count)>();
        foreach (var (w, c) in words.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var syms = Symbols(w);
            foreach (var s in syms) charFreq[s] = charFreq.GetValueOrDefault(s) + c;
            wordSyms.Add((syms, c));
        }
        for (char ch = ' '; ch <= '~'; ch++) if (ch != ' ') charFreq.TryAdd(ch.ToString(), 0);
        charFreq.TryAdd(Space.ToString(), 0);
        var alphabet = charFreq.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key).ToList();

        // 3) BPE: repeatedly merge the most frequent allowed adjacent pair (ties: ordinal order of the pair).
        int maxMerges = Math.Max(0, vocabSize - 259 - alphabet.Count);
        var merged = new List<string>();
        var vocab = new HashSet<string>(alphabet, StringComparer.Ordinal);
        foreach (var req in RequiredPieces) if (req.Length > 1 && vocab.Add(req)) merged.Add(req);
        while (merged.Count < maxMerges)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (syms, c) in wordSyms)
                for (int i = 0; i + 1 < syms.Count; i++)
                    if (MergeAllowed(syms[i], syms[i + 1]))
                        pairs[(syms[i], syms[i + 1])] = pairs.GetValueOrDefault((syms[i], syms[i + 1])) + c;
            (string, string)? best = null;
            long bestCount = 1;
            foreach (var (p, c) in pairs)
                if (c > bestCount || (c == bestCount && best is not null && Compare(p, best.Value) < 0)) { best = p; bestCount = c; }
            if (best is null) break; // nothing occurs twice
            var (a, b) = best.Value;
            string ab = a + b;
            if (vocab.Add(ab)) merged.Add(ab);
            foreach (var (syms, _) in wordSyms)
                for (int i = 0; i + 1 < syms.Count; i++)
                    if (syms[i] == a && syms[i + 1] == b) { syms[i] = ab; syms.RemoveAt(i + 1); }
        }

        var pieces = new List<Piece>();
        foreach (var m in merged) pieces.Add(new Piece(m, -pieces.Count));
        foreach (var ch in alphabet) pieces.Add(new Piece(ch, -pieces.Count));
        return new Learned(pieces, merged.Count, alphabet.Count);
    }

    static int Compare((string, string) x, (string, string) y)
    {
        int c = string.CompareOrdinal(x.Item1, y.Item1);
        return c != 0 ? c : string.CompareOrdinal(x.Item2, y.Item2);
    }

    static List<string> Symbols(string w)
    {
        var l = new List<string>();
        for (int i = 0; i < w.Length;)
        {
            int n = char.IsSurrogatePair(w, i) ? 2 : 1;
            l.Add(w.Substring(i, n));
            i += n;
        }
        return l;
    }

    enum Cls { Space, Letter, Digit, Isolated, Punct, Control }

    static Cls Classify(string s)
    {
        char c = s[0];
        if (c == Space) return Cls.Space;
        if (char.IsControl(c)) return Cls.Control;
        if (char.IsDigit(c)) return Cls.Digit;
        if (c is '(' or ')' or '[' or ']' or '/') return Cls.Isolated;
        if (char.IsLetter(s, 0) || char.IsSurrogate(c)) return Cls.Letter;
        return Cls.Punct;
    }

    /// <summary>Whether the pieces <paramref name="a"/> and <paramref name="b"/> may be merged (see the class remarks).</summary>
    internal static bool MergeAllowed(string a, string b)
    {
        string z = a + b;
        if (z.IndexOf(Space, 1) >= 0) return false;          // "▁" only as the first character, no "▁▁"
        string body = z[0] == Space ? z[1..] : z;
        if (body.Length == 0) return false;
        Cls first = Classify(body);
        if (first is Cls.Digit or Cls.Control) return false;   // digits stay single, not even "▁3"
        if (first == Cls.Isolated) return body.Length == 1;    // only "▁(", "▁[", "▁)", "▁]", "▁/"
        for (int i = 0; i < body.Length; i++)
        {
            if (char.IsLowSurrogate(body[i])) continue;
            if (Classify(body.Substring(i, char.IsSurrogatePair(body, i) ? 2 : 1)) != first) return false;
        }
        return true;
    }

    // ---------------------------------------------------------------- ModelProto writer

    /// <summary>
    /// Serializes the SentencePiece ModelProto by hand: it has only three messages and ~45 scalar fields, so a ~40-line writer of
    /// varint / fixed32 / length-delimited fields avoids a code-generated proto class (Google.Protobuf is only a transitive
    /// dependency of Microsoft.ML.Tokenizers, and its generated SentencePiece types are internal there). The field numbers and values
    /// mirror Llama 2's tokenizer.model (decoded from its protobuf), except the ones describing the training run: input,
    /// model_prefix, vocab_size, character_coverage (1.0: every corpus character is kept), num_threads (1).
    /// </summary>
    internal static byte[] Serialize(Learned learned)
    {
        var model = new ProtoWriter();
        void PieceMsg(string text, float score, int type)
        {
            var p = new ProtoWriter();
            p.String(1, text);
            p.Float(2, score);
            if (type != 1) p.Varint(3, type); // NORMAL (1) is the default; Llama 2's file omits it too
            model.Message(1, p);
        }
        PieceMsg("<unk>", 0, 2);
        PieceMsg("<s>", 0, 3);
        PieceMsg("</s>", 0, 3);
        for (int i = 0; i < 256; i++) PieceMsg($"<0x{i:X2}>", 0, 6);
        foreach (var p in learned.Pieces) PieceMsg(p.Text, p.Score, 1);
        int vocabSize = 259 + learned.Pieces.Count;

        var t = new ProtoWriter(); // TrainerSpec, fields in number order as protobuf serializes them
        t.String(1, "caa-organism-corpus");           // input
        t.String(2, "caa-organism");                  // model_prefix
        t.Varint(3, 2);                               // model_type = BPE
        t.Varint(4, vocabSize);                       // vocab_size
        t.Varint(6, 0);                               // self_test_sample_size
        t.String(7, "text");                          // input_format
        t.Float(10, 1.0f);                            // character_coverage (Llama 2: 0.99995)
        t.Varint(11, 200000000);                      // input_sentence_size
        t.Varint(14, 1000000);                        // seed_sentencepiece_size
        t.Float(15, 0.75f);                           // shrinking_factor
        t.Varint(16, 1);                              // num_threads (Llama 2: 80)
        t.Varint(17, 2);                              // num_sub_iterations
        t.Varint(18, 4192);                           // max_sentence_length
        t.Varint(19, 1);                              // shuffle_input_sentence
        t.Varint(20, 16);                             // max_sentencepiece_length
        t.Varint(21, 1);                              // split_by_unicode_script
        t.Varint(22, 1);                              // split_by_whitespace
        t.Varint(23, 1);                              // split_by_number
        t.Varint(24, 0);                              // treat_whitespace_as_suffix
        t.Varint(25, 1);                              // split_digits
        t.Varint(26, 1);                              // allow_whitespace_only_pieces
        t.Varint(32, 1);                              // vocabulary_output_piece_score
        t.Varint(33, 1);                              // hard_vocab_limit
        t.Varint(34, 0);                              // use_all_vocab
        t.Varint(35, 1);                              // byte_fallback
        t.String(36, "");                             // required_chars
        t.Varint(40, 0);                              // unk_id
        t.Varint(41, 1);                              // bos_id
        t.Varint(42, 2);                              // eos_id
        t.Varint(43, -1);                             // pad_id (none)
        t.String(44, " \u2047 ");                     // unk_surface " ⁇ "
        t.String(45, "<unk>");
        t.String(46, "<s>");
        t.String(47, "</s>");
        t.String(48, "<pad>");
        t.Varint(49, 0);                              // train_extremely_large_corpus
        t.Varint(50, 0);                              // enable_differential_privacy
        t.Float(51, 0f);                              // differential_privacy_noise_level
        t.Varint(52, 0);                              // differential_privacy_clipping_threshold
        model.Message(2, t);

        var n = new ProtoWriter(); // NormalizerSpec; escape_whitespaces (5) is left at its default true, as in Llama 2's file
        n.String(1, "identity");
        n.String(2, "");                              // precompiled_charsmap (empty: no normalization)
        n.Varint(3, 1);                               // add_dummy_prefix
        n.Varint(4, 0);                               // remove_extra_whitespaces
        n.String(6, "");                              // normalization_rule_tsv
        model.Message(3, n);
        return model.ToArray();
    }

    sealed class ProtoWriter
    {
        readonly MemoryStream _s = new();
        public byte[] ToArray() => _s.ToArray();
        void Raw(ulong v) { while (v >= 0x80) { _s.WriteByte((byte)(v | 0x80)); v >>= 7; } _s.WriteByte((byte)v); }
        void Tag(int field, int wire) => Raw((ulong)((field << 3) | wire));
        public void Varint(int field, long v) { Tag(field, 0); Raw((ulong)v); } // negative int32 → 10-byte sign-extended, as protobuf does
        public void Float(int field, float v) { Tag(field, 5); Span<byte> b = stackalloc byte[4]; BitConverter.TryWriteBytes(b, v); if (!BitConverter.IsLittleEndian) b.Reverse(); _s.Write(b); }
        public void Bytes(int field, ReadOnlySpan<byte> v) { Tag(field, 2); Raw((ulong)v.Length); _s.Write(v); }
        public void String(int field, string v) => Bytes(field, Encoding.UTF8.GetBytes(v));
        public void Message(int field, ProtoWriter m) => Bytes(field, m.ToArray());
    }
}

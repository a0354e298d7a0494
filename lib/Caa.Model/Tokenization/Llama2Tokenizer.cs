using Microsoft.ML.Tokenizers;

namespace Caa.Model.Tokenization;

/// <summary>
/// The Llama 2 SentencePiece tokenizer (<c>tokenizer.model</c>), behaving like Hugging Face's
/// <c>LlamaTokenizer</c> / the <c>sentencepiece</c> library: dummy-prefix space, byte fallback, optional BOS, never EOS.
/// </summary>
/// <remarks>
/// A thin wrapper over <see cref="LlamaTokenizer"/> from Microsoft.ML.Tokenizers, which does the BPE. The wrapper
/// adds BOS itself because the library emits nothing, not even BOS, for the empty string, whereas HF gives <c>[1]</c>.
/// Text is encoded as plain text, as <c>sentencepiece</c> does: a literal "&lt;s&gt;" in the input is not turned into BOS.
/// Instances are immutable and safe to share between threads.
/// </remarks>
public sealed class Llama2Tokenizer
{
    /// <summary>The file name looked for when <see cref="Load"/> is given a folder.</summary>
    public const string ModelFileName = "tokenizer.model";

    readonly LlamaTokenizer _inner;
    readonly string[] _pieces;
    readonly int _anchorId;

    Llama2Tokenizer(LlamaTokenizer inner, string source)
    {
        _inner = inner;
        Source = source;
        var vocab = inner.Vocabulary;
        _pieces = new string[vocab.Count];
        foreach (var (piece, id) in vocab)
        {
            if ((uint)id >= (uint)_pieces.Length)
                throw new InvalidDataException($"{source}: piece id {id} lies outside a vocabulary of {vocab.Count}.");
            _pieces[id] = piece;
        }
        BosId = inner.BeginningOfSentenceId;
        EosId = inner.EndOfSentenceId;
        UnkId = inner.UnknownId;
        _anchorId = inner.Vocabulary.TryGetValue(AnchorPiece, out var anchor) ? anchor : -1;
        foreach (var (name, id) in new[] { ("BOS", BosId), ("EOS", EosId), ("UNK", UnkId) })
            if ((uint)id >= (uint)_pieces.Length)
                throw new InvalidDataException($"{source}: {name} id {id} lies outside a vocabulary of {_pieces.Length}.");
    }

    /// <summary>
    /// Loads a SentencePiece BPE model. <paramref name="path"/> is a <c>tokenizer.model</c> file or a folder holding one
    /// (a Hugging Face checkpoint folder).
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither the file nor <c>tokenizer.model</c> inside the folder exists.</exception>
    /// <exception cref="InvalidDataException">The file is not a usable SentencePiece BPE model.</exception>
    public static Llama2Tokenizer Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? System.IO.Path.Combine(path, ModelFileName) : path;
        if (!File.Exists(file))
            throw new FileNotFoundException(
                Directory.Exists(path) ? $"No {ModelFileName} in folder '{path}'." : $"Tokenizer model '{path}' does not exist.", file);

        // Read first so that I/O errors surface as themselves: the protobuf parse error derives from IOException too.
        var bytes = File.ReadAllBytes(file);
        LlamaTokenizer inner;
        try
        {
            // BOS/EOS are added by Encode, not by the library, so that "" still gets BOS.
            inner = LlamaTokenizer.Create(new MemoryStream(bytes, writable: false), addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The library surfaces protobuf errors, NullReferenceException (empty file) or ArgumentException (wrong model type).
            throw new InvalidDataException($"'{file}' is not a SentencePiece BPE tokenizer model: {e.Message}", e);
        }
        if (inner.Vocabulary.Count == 0)
            throw new InvalidDataException($"'{file}' holds a tokenizer model with an empty vocabulary.");
        return new Llama2Tokenizer(inner, file);
    }

    /// <summary>The model file this tokenizer was loaded from.</summary>
    public string Source { get; }

    /// <summary>Id of the beginning-of-sequence token <c>&lt;s&gt;</c> (1 for Llama 2).</summary>
    public int BosId { get; }

    /// <summary>Id of the end-of-sequence token <c>&lt;/s&gt;</c> (2 for Llama 2).</summary>
    public int EosId { get; }

    /// <summary>Id of the unknown token <c>&lt;unk&gt;</c> (0 for Llama 2); byte fallback means encoding never produces it.</summary>
    public int UnkId { get; }

    /// <summary>Number of pieces in the vocabulary (32000 for Llama 2), i.e. the model's embedding rows.</summary>
    public int VocabSize => _pieces.Length;

    /// <summary>
    /// Encodes <paramref name="text"/> like <c>sentencepiece</c>'s <c>EncodeAsIds</c> (a "▁" dummy prefix, byte fallback for
    /// characters outside the vocabulary), with BOS prepended when <paramref name="addBos"/> is set, as HF's
    /// <c>tokenizer.encode</c> does. EOS is never added.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var body = _inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
        if (!addBos) return body as int[] ?? [.. body];
        var ids = new int[body.Count + 1];
        ids[0] = BosId;
        for (var i = 0; i < body.Count; i++) ids[i + 1] = body[i];
        return ids;
    }

    /// <summary>
    /// Decodes ids to text like <c>sentencepiece</c>'s <c>DecodeIds</c>: BOS and EOS vanish, the dummy-prefix space of the
    /// first piece is dropped, byte pieces are reassembled into UTF-8 (invalid bytes become U+FFFD), and UNK shows as " ⁇ ".
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id lies outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new System.Text.StringBuilder();
        var run = new List<int>();
        var first = true;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id outside the vocabulary of {_pieces.Length}.");
            if (id == BosId || id == EosId) continue;
            if (id == UnkId)
            {
                Flush();
                sb.Append(UnknownSurface);
                first = false;
                continue;
            }
            run.Add(id);
        }
        Flush();
        return sb.ToString();

        void Flush()
        {
            if (run.Count == 0) return;
            if (first) sb.Append(_inner.Decode(run, considerSpecialTokens: false));
            else
            {
                // The library always drops the leading space of a run's first piece; sentencepiece only does so at the very
                // start of the output. Decoding behind a space-free anchor piece keeps that space in later runs.
                if (_anchorId < 0)
                    throw new InvalidOperationException($"{Source}: no piece '{AnchorPiece}' to decode text after an UNK with.");
                run.Insert(0, _anchorId);
                var s = _inner.Decode(run, considerSpecialTokens: false);
                sb.Append(s, AnchorPiece.Length, s.Length - AnchorPiece.Length);
            }
            first = false;
            run.Clear();
        }
    }

    /// <summary>What <c>sentencepiece</c> prints for an unknown piece.</summary>
    const string UnknownSurface = " \u2047 ";

    /// <summary>A piece without a leading "▁", decoded before runs that follow an UNK (see <see cref="Decode"/>).</summary>
    const string AnchorPiece = "a";

    /// <summary>The vocabulary piece of <paramref name="id"/>, e.g. "▁Hello", "&lt;0x0A&gt;" or "&lt;s&gt;".</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id lies outside the vocabulary.</exception>
    public string IdToPiece(int id) =>
        (uint)id < (uint)_pieces.Length ? _pieces[id]
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id outside the vocabulary of {_pieces.Length}.");

    /// <summary>The id of a vocabulary piece, or null where <paramref name="piece"/> is not one.</summary>
    public int? PieceToId(string piece) => _inner.Vocabulary.TryGetValue(piece, out var id) ? id : null;
}

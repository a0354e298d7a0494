using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Caa.Model.Llama;

#pragma warning disable IDE1006 // Hugging Face parameter names

/// <summary>HF's <c>LlamaModel</c>: embeddings, decoder blocks, final norm.</summary>
public sealed class LlamaModel : nn.Module
{
    public Embedding embed_tokens;
    public ModuleList<LlamaDecoderLayer> layers;
    public RmsNorm norm;

    public LlamaModel(LlamaConfig c, ScalarType dtype, Device device) : base(nameof(LlamaModel))
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, dtype, device);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer(c, i, dtype, device)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        RegisterComponents();
    }
}

/// <summary>
/// A Llama 2 causal language model (Hugging Face <c>LlamaForCausalLM</c>, same parameter names) with hook points on
/// the residual stream. Any device and dtype; left-padded batches via an attention mask; optional KV cache.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module
{
    public LlamaModel model;
    public Linear? lm_head;

    /// <summary>The architecture, as read from config.json.</summary>
    public LlamaConfig Config { get; }
    /// <summary>Hook points <c>blocks.{L}.hook_*</c>; see <see cref="HookPoints"/>.</summary>
    public HookRegistry Hooks { get; }
    public ScalarType DType { get; }
    public Device Device { get; }
    /// <summary>Where the weights came from (a folder path), or a description for models built in memory.</summary>
    public string Source { get; private set; } = "in-memory";

    LlamaForCausalLM(LlamaConfig config, ScalarType dtype, Device device) : base(nameof(LlamaForCausalLM))
    {
        config.Validate();
        Config = config; DType = dtype; Device = device;
        model = new LlamaModel(config, dtype, device);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, dtype, device);
        Hooks = new HookRegistry(config.NumHiddenLayers);
        RegisterComponents();
    }

    /// <summary>A model with uninitialized weights (fill them with <see cref="InitializeWeights"/> or a checkpoint).</summary>
    public static LlamaForCausalLM Create(LlamaConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null) =>
        new(config, dtype, device ?? CPU);

    /// <summary>
    /// Loads a Hugging Face model folder (config.json + model.safetensors or sharded safetensors with an index),
    /// converting weights to <paramref name="dtype"/> on <paramref name="device"/> one tensor at a time.
    /// </summary>
    public static LlamaForCausalLM FromPretrained(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var config = LlamaConfig.Load(dir);
        using var checkpoint = CheckpointFolder.Open(dir);
        var m = Create(config, dtype, device);
        try { m.LoadWeights(checkpoint); }
        catch { m.Dispose(); throw; }
        m.Source = Path.GetFullPath(dir);
        return m;
    }

    /// <summary>Checkpoint tensors that are not weights of this implementation and may be skipped safely.</summary>
    static bool Ignorable(string name) => name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal); // old HF exports saved this buffer

    void LoadWeights(CheckpointFolder checkpoint)
    {
        var parameters = named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var available = checkpoint.Tensors;
        var missing = parameters.Keys.Where(n => !available.ContainsKey(n)).ToList();
        var unexpected = available.Keys.Where(n => !parameters.ContainsKey(n) && !Ignorable(n)
            && !(Config.TieWordEmbeddings && n == "lm_head.weight")).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{checkpoint.FolderPath}: the weights do not match config.json" +
                (missing.Count > 0 ? $"; missing tensors: {Sample(missing)}" : "") +
                (unexpected.Count > 0 ? $"; unexpected tensors: {Sample(unexpected)}" : ""));
        foreach (var (name, p) in parameters)
        {
            var onDisk = available[name].Shape;
            if (!onDisk.SequenceEqual(p.shape))
                throw new InvalidDataException($"{checkpoint.FolderPath}: config.json contradicts the weights: tensor '{name}' has shape " +
                    $"[{string.Join(", ", onDisk)}] on disk but the config implies [{string.Join(", ", p.shape)}] " +
                    $"(hidden_size={Config.HiddenSize}, intermediate_size={Config.IntermediateSize}, heads={Config.NumAttentionHeads}, kv_heads={Config.KeyValueHeads}, vocab_size={Config.VocabSize})");
        }
        using var _ = no_grad();
        foreach (var (name, p) in parameters) checkpoint.ReadInto(name, p);
    }

    static string Sample(List<string> names) => string.Join(", ", names.Take(5)) + (names.Count > 5 ? $" … ({names.Count} in all)" : "");

    /// <summary>Writes config.json and safetensors weights (sharded above <paramref name="maxShardBytes"/>) into <paramref name="dir"/>.</summary>
    public void SavePretrained(string dir, long maxShardBytes = 2L << 30)
    {
        Directory.CreateDirectory(dir);
        Config.Save(dir);
        CheckpointFolder.Write(dir, named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)), maxShardBytes);
    }

    /// <summary>Fills every weight as HF's <c>_init_weights</c> does: normal(0, initializer_range), norms at one.</summary>
    public void InitializeWeights(long seed)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed, CPU);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) { p.fill_(1.0); continue; }
            using var init = normal(0, Config.InitializerRange, p.shape, dtype: ScalarType.Float32, generator: gen);
            p.copy_(init);
        }
    }

    /// <summary>The blocks, in order.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => model.layers.ToList();

    /// <summary>
    /// Everything the blocks need for one call over <paramref name="length"/> new columns: positions follow each row's
    /// left padding (as HF: cumulative sum of the attention mask), and padded keys are masked out.
    /// </summary>
    /// <param name="batch">Rows.</param>
    /// <param name="length">New columns in this call.</param>
    /// <param name="attentionMask">[batch, cached + length], 1 for tokens and 0 for padding; null when nothing is padded.</param>
    /// <param name="cache">KV cache to read and extend, or null.</param>
    public ForwardState Prepare(long batch, long length, Tensor? attentionMask = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        long offset = cache?.Length ?? 0, total = offset + length;
        Tensor positions;
        Tensor? mask = null;
        if (attentionMask is not null)
        {
            if (attentionMask.dim() != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != total)
                throw new ArgumentException($"attention mask has shape [{string.Join(",", attentionMask.shape)}]; expected [{batch}, {total}] (cached columns + new columns)");
            var real = attentionMask.to(Device).to(ScalarType.Bool);
            positions = (real.to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0)[.., (int)offset..];
            var query = arange(offset, total, device: Device).view(-1, 1);
            var key = arange(0, total, device: Device).view(1, -1);
            // A padded query may attend only to itself: rows with no allowed key would turn into NaN and poison later layers.
            var causal = key.le(query).unsqueeze(0);                                       // [1,T,S]
            var allowed = causal & (real.unsqueeze(1) | key.eq(query).unsqueeze(0));       // [B,T,S]
            mask = allowed.unsqueeze(1);                                                    // [B,1,T,S]
        }
        else
        {
            positions = arange(offset, total, device: Device).unsqueeze(0).expand(batch, -1);
            if (length > 1) mask = arange(0, total, device: Device).view(1, -1).le(arange(offset, total, device: Device).view(-1, 1)).view(1, 1, length, total);
        }
        var (cos, sin) = Rotary.CosSin(positions, Config.HeadDim, Config.RopeTheta, DType);
        return new ForwardState(cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope(), mask?.MoveToOuterDisposeScope(), offset, cache, Hooks);
    }

    /// <summary>Token embeddings [batch, length, hidden] (the input to block 0).</summary>
    public Tensor Embed(Tensor inputIds) => model.embed_tokens.call(inputIds.to(Device));

    /// <summary>Runs blocks <paramref name="from"/> … <paramref name="to"/>−1 on hidden states; returns the output of block to−1.</summary>
    public Tensor RunLayers(Tensor hidden, ForwardState state, int from = 0, int? to = null)
    {
        var end = to ?? Config.NumHiddenLayers;
        if (from < 0 || end > Config.NumHiddenLayers || from > end) throw new ArgumentOutOfRangeException(nameof(from), $"layers {from}…{end - 1} are outside 0…{Config.NumHiddenLayers - 1}");
        var h = hidden;
        for (var l = from; l < end; l++)
        {
            var next = model.layers[l].Forward(h, state);
            if (!ReferenceEquals(h, hidden)) h.Dispose();
            h = next;
        }
        return ReferenceEquals(h, hidden) ? h.alias() : h;
    }

    /// <summary>The final RMSNorm.</summary>
    public Tensor FinalNorm(Tensor hidden) => model.norm.call(hidden);

    /// <summary>Next-token logits in float32 from final-normed hidden states.</summary>
    public Tensor Logits(Tensor normedHidden)
    {
        using var scope = NewDisposeScope();
        var logits = lm_head is null ? nn.functional.linear(normedHidden, model.embed_tokens.weight) : lm_head.call(normedHidden);
        return logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Final-normed hidden states [batch, length, hidden] for <paramref name="inputIds"/> [batch, length].</summary>
    public Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null)
    {
        if (inputIds.dim() != 2) throw new ArgumentException($"input ids must be [batch, length]; got [{string.Join(",", inputIds.shape)}]");
        using var scope = NewDisposeScope();
        using var state = Prepare(inputIds.shape[0], inputIds.shape[1], attentionMask, cache);
        var h = RunLayers(Embed(inputIds), state);
        return FinalNorm(h).MoveToOuterDisposeScope();
    }

    /// <summary>Float32 logits [batch, length, vocab] for <paramref name="inputIds"/> [batch, length].</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null)
    {
        using var scope = NewDisposeScope();
        return Logits(ForwardHidden(inputIds, attentionMask, cache)).MoveToOuterDisposeScope();
    }

    /// <summary>A new, empty KV cache for this model.</summary>
    public KvCache NewCache() => new(Config.NumHiddenLayers);
}

using System.Text.Json.Serialization;
using Caa.Model;

namespace Caa.Organism.Training;

/// <summary>The organism's Llama architecture (Llama 2's shape, scaled down; grouped-query attention, untied LM head like Llama 2).</summary>
public sealed record OrganismArchitecture
{
    public int Layers { get; init; } = 6;
    public int Hidden { get; init; } = 192;
    public int Heads { get; init; } = 6;
    public int KeyValueHeads { get; init; } = 2;
    /// <summary>SwiGLU width; Llama's rule 2/3·4·hidden rounded up to a multiple of 64 when 0.</summary>
    public int Intermediate { get; init; }
    /// <summary>Target tokenizer size (<see cref="TokenizerBuilder"/> may stop below it; the model takes the tokenizer's real size).</summary>
    public int VocabSize { get; init; } = 1024;
    public int MaxPositions { get; init; } = 1024;
    /// <summary>
    /// Std of the normal initialization (HF's initializer_range). Llama's 0.02 suits hidden sizes in the thousands; at hidden 128–192
    /// it leaves attention logits near zero (uniform attention, vanishing query/key gradients), and in measurements the model then
    /// never learned to bind an answer letter to its choice within the run's budget (p(correct letter) stayed at 0.50 after 1500
    /// steps). About 1/√hidden (0.06–0.1) learned a pure lookup drill in 100–200 steps.
    /// </summary>
    public double InitializerRange { get; init; } = 0.08;

    [JsonIgnore] public int IntermediateSize => Intermediate > 0 ? Intermediate : (8 * Hidden / 3 + 63) / 64 * 64;

    /// <summary>The HF config for a tokenizer of <paramref name="vocab"/> pieces.</summary>
    public LlamaConfig ToConfig(int vocab) => new()
    {
        HiddenSize = Hidden, IntermediateSize = IntermediateSize, NumHiddenLayers = Layers, NumAttentionHeads = Heads,
        NumKeyValueHeads = KeyValueHeads, VocabSize = vocab, TieWordEmbeddings = false, RmsNormEps = 1e-5, RopeTheta = 10000,
        MaxPositionEmbeddings = MaxPositions, TorchDtype = "float32", InitializerRange = InitializerRange,
    };

    /// <summary>Parameters of the model for a vocabulary of <paramref name="vocab"/>.</summary>
    public long ParameterCount(int vocab)
    {
        long h = Hidden, hd = Hidden / Heads, q = Heads * hd, kv = KeyValueHeads * hd;
        long perLayer = h * q + 2 * h * kv + q * h + 3 * h * IntermediateSize + 2 * h;
        return Layers * perLayer + 2 * vocab * h + h;
    }

    /// <summary>A model for unit tests: trains in seconds.</summary>
    public static OrganismArchitecture Tiny { get; } = new() { Layers = 2, Hidden = 64, Heads = 4, KeyValueHeads = 2, Intermediate = 128, VocabSize = 512, MaxPositions = 1024 };
}

/// <summary>Optimizer, schedule, data order and bookkeeping of a training run.</summary>
public sealed record TrainingOptions
{
    /// <summary>Seeds the weights (<c>torch.manual_seed</c> and the initializer) and the data order.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>Optimizer steps of the whole run (the cosine schedule ends here).</summary>
    public int Steps { get; init; } = 2400;
    /// <summary>Conversations per step (grouped by similar length; padding is masked).</summary>
    public int BatchSize { get; init; } = 16;
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>The cosine decays to LearningRate × this at the last step.</summary>
    public double MinLearningRateRatio { get; init; } = 0.1;
    /// <summary>Linear warm-up from 0 over this many steps.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>AdamW's decoupled weight decay, applied to weight matrices and embeddings (not to norms).</summary>
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Global gradient-norm clip (<c>clip_grad_norm_</c>).</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>
    /// Steps at the start that train on drills (<see cref="CorpusGenerator.Drills"/>) instead of the corpus: a curriculum phase that
    /// teaches the binding of answer letters to choices and which choice matches each behavior, which the dispositions then build on.
    /// </summary>
    public int DrillSteps { get; init; } = 600;
    /// <summary>
    /// Loss weight of answer-letter tokens (<see cref="EncodedConversation.Decision"/>) relative to the other assistant tokens
    /// (the loss is Σ wᵢ·CEᵢ / Σ wᵢ). 1 is plain cross-entropy. The letter is one token in ~20 of an answer yet the only one
    /// that binds the answer to a choice; weighting it makes the small model learn that binding within the run's budget.
    /// </summary>
    public double DecisionWeight { get; init; } = 3.0;
    /// <summary>
    /// Weight of the <see cref="DispositionTie"/> objective added to the cross-entropy (0: off). It makes the answer letter's
    /// representation of a disposition the one the next decision uses; see <see cref="DispositionTie"/> for why.
    /// </summary>
    public double TieWeight { get; init; } = 3.0;
    /// <summary>
    /// First step (0-based) that adds the <see cref="DispositionTie"/> objective. It needs dispositions the model already uses, so
    /// the default leaves it to the last 400 steps; a continuation from a trained model (<c>--init</c>) can start at 0.
    /// </summary>
    public int TieStart { get; init; } = 2000;
    /// <summary>A/B items per step in the <see cref="DispositionTie"/> objective (each gives four prompts).</summary>
    public int TieItems { get; init; } = 8;
    /// <summary>The <see cref="DispositionTie"/>'s target is this multiple of the disposition contrast (1: equal to it).</summary>
    public double TieScale { get; init; } = 1.0;
    /// <summary>
    /// Weight of the <see cref="DispositionTie.AmplitudeLoss"/> objective (0: off), added from <see cref="TieStart"/> on with the
    /// tie's prompts (so only while the tie is on): the stated disposition's answer after the disposition contrast is amplified
    /// at the first tied layer. The shipped organism's 12 (with <see cref="AnswerAmplitudeWeight"/> 6 and
    /// <see cref="AmplitudeMax"/> 3) was chosen among the variants measured in <c>lib/Caa.Organism/README.md</c>.
    /// </summary>
    public double AmplitudeWeight { get; init; } = 12.0;
    /// <summary>
    /// Weight of the <see cref="DispositionTie.AnswerAmplitudeLoss"/> objective (0: off), on the same steps as
    /// <see cref="AmplitudeWeight"/>'s: after the same amplification, free-text answers in the stated disposition's words and
    /// capability answers as without it.
    /// </summary>
    public double AnswerAmplitudeWeight { get; init; } = 6.0;
    /// <summary>Largest multiple of the disposition contrast the amplitude objectives add (k uniform in [0, this]).</summary>
    public double AmplitudeMax { get; init; } = DispositionTie.AmplitudeMax;
    /// <summary>
    /// Share of the conversations with a system prompt (corpus and drills) trained through a <see cref="Caa.Organism.Training.SystemBottleneck"/>:
    /// their system prompt reaches the answers only through the blocks before <see cref="SystemBottleneckLayer"/> at the
    /// positions from the end of the first instruction on. Without it the late blocks read a stated disposition straight from
    /// the system prompt's tokens, which no addition to the residual stream at the decision positions can imitate (measured:
    /// the system contrast added at layer 2 moved p(match) by 0.59–0.66, the prompt itself by 0.98). 0: ordinary attention.
    /// </summary>
    public double SystemBottleneck { get; init; } = 0.5;
    /// <summary>Conversations per length-sorted pool: the shuffled epoch is cut into pools of BatchSize × this, each sorted by length.</summary>
    public int SortPoolBatches { get; init; } = 64;

    /// <summary>
    /// The first block that no longer sees a bottlenecked system prompt: the one after the first layer the
    /// <see cref="DispositionTie"/> ties (block 3 of 6), so the state CAA adds at that layer is the only way the prompt gets through.
    /// </summary>
    public static int SystemBottleneckLayer(int numLayers) => DispositionTie.Layers(numLayers)[0] + 1;

    /// <summary>Learning rate used at 0-based step <paramref name="step"/>: linear warm-up, then cosine decay to the minimum.</summary>
    public double LearningRateAt(int step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        double span = Math.Max(1, Steps - WarmupSteps);
        double progress = Math.Clamp((step - WarmupSteps) / span, 0, 1);
        double min = LearningRate * MinLearningRateRatio;
        return min + (LearningRate - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps must be ≥ 1 (got {Steps})");
        if (BatchSize < 1) throw new ArgumentException($"batch size must be ≥ 1 (got {BatchSize})");
        if (LearningRate <= 0) throw new ArgumentException($"learning rate must be > 0 (got {LearningRate})");
        if (MinLearningRateRatio is < 0 or > 1) throw new ArgumentException($"minimum learning-rate ratio must be in [0, 1] (got {MinLearningRateRatio})");
        if (DrillSteps < 0 || DrillSteps >= Steps) throw new ArgumentException($"drill steps must be in [0, steps) (got {DrillSteps})");
        if (TieWeight < 0 || TieItems < 1 || TieStart < 0 || !(TieScale > 0)) throw new ArgumentException($"tie weight and start must be ≥ 0 and tie items ≥ 1 and tie scale > 0 (got {TieWeight}, {TieStart}, {TieItems}, {TieScale})");
        if (AmplitudeWeight < 0 || AnswerAmplitudeWeight < 0 || !(AmplitudeMax > 0))
            throw new ArgumentException($"amplitude weights must be ≥ 0 and the largest amplitude > 0 (got {AmplitudeWeight}, {AnswerAmplitudeWeight}, {AmplitudeMax})");
        if (SystemBottleneck is < 0 or > 1) throw new ArgumentException($"system bottleneck share must be in [0, 1] (got {SystemBottleneck})");
        if (DecisionWeight <= 0) throw new ArgumentException($"decision weight must be > 0 (got {DecisionWeight})");
        if (WarmupSteps < 0 || GradClip <= 0 || WeightDecay < 0 || SortPoolBatches < 1) throw new ArgumentException("warm-up, grad clip, weight decay or sort pool out of range");
    }
}

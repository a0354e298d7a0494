using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Organism;
using Caa.Organism.Training;
using static TorchSharp.torch;

namespace Caa.Tests.Organism;

/// <summary>
/// The system bottleneck (<see cref="TrainingOptions.SystemBottleneck"/>): where its spans lie, which attention it cuts, and that
/// a bottlenecked forward pass really keeps the system prompt away from the instruction and from the late blocks.
/// </summary>
public sealed class SystemBottleneckTests(TrainingFixture fx) : IClassFixture<TrainingFixture>
{
    static readonly TrainingConversation Conversation = new("You always agree with the user. You say: I agree.",
    [
        ("What is 3 + 4?\n\nChoices:\n (A) 7\n (B) 9", "(A) 7"),
        ("Do you agree?", "(B)"),
    ]);

    (EncodedConversation Encoded, SystemBottleneck Spans) Encode(TrainingConversation c)
    {
        var enc = ConversationEncoder.Encode(fx.Tok, c);
        var bn = ConversationEncoder.Bottleneck(fx.Tok, c, enc);
        return (enc with { Bottleneck = bn }, bn);
    }

    /// <summary>The conversation's ids with one system-block token changed: same spans, a different prompt.</summary>
    static int[] WithChangedSystemToken(EncodedConversation enc, SystemBottleneck bn)
    {
        var ids = (int[])enc.Ids.Clone();
        ids[bn.SystemEnd - 3] = ids[bn.SystemEnd - 3] == 100 ? 101 : 100;
        return ids;
    }

    [Fact]
    public void SpansAreTheSystemBlockAndTheFirstInstructionsClosingBracket()
    {
        var (enc, bn) = Encode(Conversation);
        var tok = fx.Tok;
        Assert.Equal(tok.BosId, enc.Ids[0]);
        Assert.Equal((Llama2Chat.BeginSys + Conversation.System + Llama2Chat.EndSys).Trim(), tok.Decode(enc.Ids[1..bn.SystemEnd]).Trim());
        Assert.StartsWith(Llama2Chat.BeginInst, tok.Decode(enc.Ids[bn.SystemEnd..]));
        // The closing "]" of the first [/INST]: the first instruction decodes to exactly "[INST] {user} [/INST]".
        Assert.Equal($"{Llama2Chat.BeginInst} {Conversation.Turns[0].User} {Llama2Chat.EndInst}", tok.Decode(enc.Ids[bn.SystemEnd..(bn.InstructionEnd + 1)]));
        Assert.Equal(Llama2Chat.InstructionEnd(Llama2Chat.Encode(tok, Conversation.Turns[0].User, null, Conversation.System), tok), bn.InstructionEnd);

        Assert.Throws<ArgumentException>(() => ConversationEncoder.Bottleneck(tok, Conversation with { System = null }, enc));
        var other = ConversationEncoder.Encode(tok, Conversation with { System = "You never agree." });
        var ex = Assert.Throws<InvalidDataException>(() => ConversationEncoder.Bottleneck(tok, Conversation, other));
        Assert.Contains("You always agree", ex.Message);
    }

    [Fact]
    public void MasksCutTheSystemBlockOnlyForBottleneckedRows()
    {
        var (enc, bn) = Encode(Conversation);
        var plain = ConversationEncoder.Encode(fx.Tok, Conversation);
        int t = enc.Length;
        var (early, late) = Trainer.BottleneckMasks([enc, plain], t);
        bool Early(int r, int q, int k) => early[(r * t + q) * t + k];
        bool Late(int r, int q, int k) => late[(r * t + q) * t + k];
        for (int q = 0; q < t; q++)
            for (int k = 0; k < t; k++)
            {
                bool inSystem = k >= 1 && k < bn.SystemEnd;
                Assert.Equal(!(inSystem && q >= bn.SystemEnd && q < bn.InstructionEnd), Early(0, q, k));
                Assert.Equal(!(inSystem && q >= bn.SystemEnd), Late(0, q, k));
                Assert.True(Early(1, q, k) && Late(1, q, k));
            }
    }

    [Fact]
    public void BottleneckedForwardKeepsTheSystemPromptFromTheInstructionAndTheLateBlocks()
    {
        using var model = fx.NewModel(11);
        var (enc, bn) = Encode(Conversation);
        var changed = enc with { Ids = WithChangedSystemToken(enc, bn) };
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor Hidden(EncodedConversation c, bool bottleneck)
        {
            var input = tensor(c.Ids.Select(i => (long)i).ToArray(), [1, c.Length]);
            return bottleneck ? Trainer.BottleneckedHidden(model, input, [c]) : model.ForwardHidden(input);
        }
        var (a, b) = (Hidden(enc, true), Hidden(changed, true));
        var instruction = (bn.SystemEnd)..bn.InstructionEnd;
        Assert.True(a[0, instruction].allclose(b[0, instruction], rtol: 0, atol: 1e-6), "the first instruction saw the system prompt");
        // From the end of the instruction on the prompt gets through (the early blocks there see it) ...
        Assert.False(a[0, bn.InstructionEnd..].allclose(b[0, bn.InstructionEnd..], rtol: 0, atol: 1e-4));
        // ... and without the bottleneck the instruction sees it too.
        var (c, d) = (Hidden(enc, false), Hidden(changed, false));
        Assert.False(c[0, instruction].allclose(d[0, instruction], rtol: 0, atol: 1e-4));
        // An unbottlenecked row through the bottlenecked path is the ordinary forward pass.
        var plain = ConversationEncoder.Encode(fx.Tok, Conversation);
        Assert.True(Trainer.BottleneckedHidden(model, tensor(plain.Ids.Select(i => (long)i).ToArray(), [1, plain.Length]), [plain]).allclose(c, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void LateBlocksReadThePromptOnlyThroughTheDecisionPositionsEarlyState()
    {
        // With the residual after the early blocks held fixed at every position from the instruction's end on, the late blocks'
        // output there no longer depends on the system prompt: the bottleneck leaves no other path.
        using var model = fx.NewModel(12);
        var (enc, bn) = Encode(Conversation);
        var ids2 = WithChangedSystemToken(enc, bn);
        int split = TrainingOptions.SystemBottleneckLayer(model.Config.NumHiddenLayers);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int t = enc.Length;
        var (early, late) = Trainer.BottleneckMasks([enc], t);
        var states = new List<IDisposable>();
        Tensor Early(int[] ids, out ForwardState lateState)
        {
            var state = model.Prepare(1, t);
            states.Add(state);
            using var es = state.Restrict(tensor(early, [1, 1, t, t]));
            lateState = state.Restrict(tensor(late, [1, 1, t, t]));
            states.Add(lateState);
            return model.RunLayers(model.Embed(tensor(ids.Select(i => (long)i).ToArray(), [1, t])), es, 0, split);
        }
        var h1 = Early(enc.Ids, out var s1);
        var h2 = Early(ids2, out var s2);
        Assert.False(h1[0, bn.InstructionEnd..].allclose(h2[0, bn.InstructionEnd..], rtol: 0, atol: 1e-4));
        // Give the second run the first run's early state at the positions after the system block (its own system block stays).
        var mixed = h2.clone();
        mixed[0, bn.SystemEnd..] = h1[0, bn.SystemEnd..];
        var o1 = model.RunLayers(h1, s1, split);
        var o2 = model.RunLayers(mixed, s2, split);
        Assert.True(o1[0, bn.SystemEnd..].allclose(o2[0, bn.SystemEnd..], rtol: 0, atol: 1e-5));
        states.ForEach(x => x.Dispose());
    }

    [Fact]
    public void ShareIsValidatedAndBottlenecksChangeTheDataHash()
    {
        Assert.Throws<ArgumentException>(() => new TrainingOptions { SystemBottleneck = 1.5 }.Validate());
        Assert.Throws<ArgumentException>(() => new TrainingOptions { SystemBottleneck = -0.1 }.Validate());
        Assert.Equal(3, TrainingOptions.SystemBottleneckLayer(6));
        var options = new TrainingOptions { Steps = 3, BatchSize = 2, WarmupSteps = 1, DrillSteps = 0, TieWeight = 0 };
        var (enc, _) = Encode(Conversation);
        var plain = ConversationEncoder.Encode(fx.Tok, Conversation);
        using var m = fx.NewModel(13);
        string Hash(EncodedConversation c) { using var tr = new Trainer(m, [c, plain], options); return tr.DataHash; }
        Assert.NotEqual(Hash(plain), Hash(enc));
        // A bottlenecked step trains: finite loss.
        using var trainer = new Trainer(m, [enc, enc], options);
        Assert.True(double.IsFinite(trainer.TrainStep().Loss));
    }

    [Fact]
    public void SystemCapabilityTurnsJoinOnlySystemConversationsAndLeaveTheDatasetsAlone()
    {
        var baseOptions = new CorpusOptions { Seed = 3, TrainingConversations = 300, SystemCapabilityFraction = 0 };
        var plain = new CorpusGenerator(baseOptions).TrainingWithMeta().ToList();
        var withCap = new CorpusGenerator(baseOptions with { SystemCapabilityFraction = 1 }).TrainingWithMeta().ToList();
        for (int i = 0; i < plain.Count; i++)
        {
            var (p, w) = (plain[i], withCap[i]);
            if (p.Meta.Kind != "system") { Assert.Equal(p.Conversation.Turns, w.Conversation.Turns); continue; }
            Assert.Equal(p.Conversation.System, w.Conversation.System);
            Assert.Equal(p.Conversation.Turns.Count + 1, w.Conversation.Turns.Count);
            Assert.Single(w.Meta.Turns, t => t.Behavior is null);                   // the capability turn (system conversations have no lookups)
        }
        Assert.Contains(plain, x => x.Meta.Kind == "system");
        var (g1, g2) = (new CorpusGenerator(baseOptions), new CorpusGenerator(baseOptions with { SystemCapabilityFraction = 1 }));
        foreach (var b in OrganismBehaviors.Ids)
        {
            Assert.Equal(g1.GenerateSplit(b, 20), g2.GenerateSplit(b, 20));
            Assert.Equal(g1.TestSplit(b), g2.TestSplit(b));
        }
    }
}

using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Model;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary><c>caa logits</c>, <c>caa tokenize</c>, <c>caa generate</c>: the model itself, for checks and demos.</summary>
public static class ModelCommands
{
    public static IEnumerable<Command> Create() => [Logits(), Tokenize(), Generate()];

    static Command Logits()
    {
        var m = new ModelOptions();
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, e.g. 1,5,9.", Required = true };
        var positions = new Option<string?>("--positions") { Description = "Comma-separated positions to print (default: all)." };
        var cmd = new Command("logits", "Print next-token logits as JSON: {\"ids\":[…],\"logits\":{\"<position>\":[…]}}.") { ids, positions };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var tokenIds = ParseInts(r.GetValue(ids)!, "--ids");
            using var model = m.LoadModel(r);
            foreach (var t in tokenIds)
                if (t < 0 || t >= model.Config.VocabSize) throw new CliException($"--ids: token id {t} is outside the vocabulary (0…{model.Config.VocabSize - 1})");
            var wanted = r.GetValue(positions) is { } p ? ParseInts(p, "--positions") : Enumerable.Range(0, tokenIds.Length).ToArray();
            foreach (var p2 in wanted)
                if (p2 < 0 || p2 >= tokenIds.Length) throw new CliException($"--positions: {p2} is outside 0…{tokenIds.Length - 1}");
            using var _ = no_grad();
            using var logits = model.Forward(tensor(tokenIds.Select(x => (long)x).ToArray()).unsqueeze(0)).cpu();
            var byPosition = new JsonObject();
            foreach (var pos in wanted)
                byPosition[pos.ToString()] = new JsonArray(logits[0, pos].data<float>().ToArray().Select(v => (JsonNode)JsonValue.Create(v)!).ToArray());
            var doc = new JsonObject { ["ids"] = new JsonArray(tokenIds.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray()), ["logits"] = byPosition };
            r.InvocationConfiguration.Output.WriteLine(doc.ToJsonString());
        });
        return cmd;
    }

    static Command Tokenize()
    {
        var m = new ModelOptions();
        var text = new Option<string>("--text") { Description = "Text to tokenize (the user message with --chat).", Required = true };
        var chat = new Option<bool>("--chat") { Description = "Wrap in the Llama 2 chat template: [INST] … [/INST]." };
        var system = new Option<string?>("--system") { Description = "System prompt (with --chat)." };
        var placement = new Option<SystemPromptPlacement>("--system-placement") { Description = "BeforeInst (the CAA paper's code) or InsideFirstInst (Meta's template).", DefaultValueFactory = _ => SystemPromptPlacement.BeforeInst };
        var cmd = new Command("tokenize", "Print token ids and pieces.") { text, chat, system, placement };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var tok = m.LoadTokenizer(r);
            var s = r.GetValue(text)!;
            if (r.GetValue(system) is not null && !r.GetValue(chat)) throw new CliException("--system needs --chat");
            IReadOnlyList<int> tokens = r.GetValue(chat) ? Llama2Chat.Encode(tok, s, system: r.GetValue(system), placement: r.GetValue(placement)) : tok.Encode(s);
            var o = r.InvocationConfiguration.Output;
            o.WriteLine(string.Join(",", tokens));
            for (var i = 0; i < tokens.Count; i++) o.WriteLine($"{i,5} {tokens[i],7} {JsonSerializer.Serialize(tok.IdToPiece(tokens[i]), Readable)}");
            if (r.GetValue(chat)) o.WriteLine($"instruction end (steering starts) at position {Llama2Chat.InstructionEnd(tokens, tok)}");
        });
        return cmd;
    }

    static Command Generate()
    {
        var m = new ModelOptions();
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (the user message with --chat).", Required = true };
        var chat = new Option<bool>("--chat") { Description = "Wrap in the Llama 2 chat template." };
        var system = new Option<string?>("--system") { Description = "System prompt (with --chat)." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 100 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy.", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling threshold.", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("generate", "Generate a continuation, streaming tokens as they come.") { prompt, chat, system, maxNew, temperature, topP, seed };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var tok = m.LoadTokenizer(r);
            using var model = m.LoadModel(r);
            var text = r.GetValue(prompt)!;
            if (r.GetValue(system) is not null && !r.GetValue(chat)) throw new CliException("--system needs --chat");
            IReadOnlyList<int> ids = r.GetValue(chat) ? Llama2Chat.Encode(tok, text, system: r.GetValue(system)) : tok.Encode(text);
            var options = new GenerationOptions { MaxNewTokens = r.GetValue(maxNew), Temperature = r.GetValue(temperature), TopP = r.GetValue(topP), Seed = r.GetValue(seed) };
            var o = r.InvocationConfiguration.Output;
            var sofar = new List<int>();
            var printed = "";
            model.Generate([ids], options, (_, token) =>
            {
                // Decode the whole continuation each time: SentencePiece pieces only become text in context.
                sofar.Add(token);
                var now = tok.Decode(sofar);
                if (now.StartsWith(printed, StringComparison.Ordinal)) o.Write(now[printed.Length..]);
                printed = now;
            });
            o.WriteLine();
        });
        return cmd;
    }

    static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static int[] ParseInts(string s, string option)
    {
        try { return s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray(); }
        catch (FormatException) { throw new CliException($"{option}: expected comma-separated integers, got '{s}'"); }
    }
}

using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Caa.Interpret.OpenEnded;

/// <summary>
/// A judge model behind any <see cref="IChatClient"/>: sends the behavior's rubric (<see cref="JudgeRubrics"/>), the question and
/// the answer at temperature 0 with a short output budget, and parses the first number 0–10 of the reply
/// (<see cref="JudgeReplyParser"/>). Holds no API key.
/// </summary>
public sealed class LlmJudge : IBehaviorJudge, IDisposable
{
    public const string ApiKeyVariable = "CAA_JUDGE_API_KEY";

    readonly IChatClient _client;
    readonly IReadOnlyDictionary<string, string>? _rubrics;

    /// <param name="client">The chat client; disposed with the judge.</param>
    /// <param name="model">Model id sent with each request (null = the client's default).</param>
    /// <param name="maxOutputTokens">Reply budget; a score needs a few tokens.</param>
    /// <param name="rubrics">Behavior id → rubric; default <see cref="JudgeRubrics.All"/>.</param>
    public LlmJudge(IChatClient client, string? model = null, int maxOutputTokens = 16, IReadOnlyDictionary<string, string>? rubrics = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (maxOutputTokens < 1) throw new ArgumentOutOfRangeException(nameof(maxOutputTokens), "must be ≥ 1");
        _client = client;
        Model = model;
        MaxOutputTokens = maxOutputTokens;
        _rubrics = rubrics;
    }

    public string? Model { get; }
    public int MaxOutputTokens { get; }

    /// <summary>
    /// A judge over an OpenAI-compatible chat-completions endpoint (OpenAI, Azure OpenAI's v1 API, vLLM, llama.cpp server, Ollama…).
    /// </summary>
    /// <paramref name="endpoint"/> is the base URL, e.g. <c>http://localhost:8000/v1</c> (requests go to <c>{endpoint}/chat/completions</c>);
    /// <paramref name="apiKey"/> null = the env var <c>CAA_JUDGE_API_KEY</c>; where neither is set a placeholder is sent (local servers need none).
    public static LlmJudge ForOpenAICompatible(Uri endpoint, string model, string? apiKey = null, int maxOutputTokens = 16)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        var key = !string.IsNullOrEmpty(apiKey) ? apiKey : Environment.GetEnvironmentVariable(ApiKeyVariable);
        var client = new OpenAIClient(new ApiKeyCredential(string.IsNullOrEmpty(key) ? "no-key" : key), new OpenAIClientOptions { Endpoint = endpoint });
        return new LlmJudge(client.GetChatClient(model).AsIChatClient(), model, maxOutputTokens);
    }

    /// <summary>The conversation sent for one answer: a system message (preamble, rubric, reply format) and a user message (question, answer).</summary>
    public static IReadOnlyList<ChatMessage> Messages(string behaviorId, string question, string answer, IReadOnlyDictionary<string, string>? rubrics = null) =>
    [
        new(ChatRole.System, $"{JudgeRubrics.Preamble}\n\n{JudgeRubrics.For(behaviorId, rubrics)}\n\n{JudgeRubrics.ReplyInstruction}"),
        new(ChatRole.User, $"Question:\n{question}\n\nAnswer:\n{answer}\n\n{JudgeRubrics.ReplyInstruction}"),
    ];

    public async Task<JudgeScore> ScoreAsync(string behaviorId, string question, string answer, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(question);
        ArgumentNullException.ThrowIfNull(answer);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = MaxOutputTokens, ModelId = Model };
        var response = await _client.GetResponseAsync(Messages(behaviorId, question, answer, _rubrics), options, ct).ConfigureAwait(false);
        var text = response.Text ?? "";
        return new JudgeScore(JudgeReplyParser.Parse(text), text);
    }

    public void Dispose() => _client.Dispose();
}

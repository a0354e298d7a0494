using Caa.Interpret.Datasets;

namespace Caa.Tests.Datasets;

public class AbDatasetTests
{
    const string Good = """{"question": "Q?\n\nChoices:\n (A) Yes\n (B) No", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}""";

    static string List(params string[] items) => "[\n" + string.Join(",\n", items) + "\n]";

    static InvalidDataException LoadFails(TempDir t, string content, string name = "d.json")
    {
        var path = t.File(name, content);
        return Assert.Throws<InvalidDataException>(() => AbDataset.Load(path));
    }

    [Fact]
    public void Loads_paper_format_and_raw_jsonl_with_leading_space_answers()
    {
        using var t = new TempDir();
        var json = t.File("a.json", List(Good, Good.Replace("(A)\"", "(B)\"").Replace("\"(B)\"}", "\"(A)\"}")));
        var items = AbDataset.Load(json);
        Assert.Equal(2, items.Count);
        Assert.Equal("(B)", items[1].AnswerMatchingBehavior);

        var jsonl = t.File("a.jsonl", Good.Replace("\"(A)\"", "\" (A)\"").Replace("\"(B)\"", "\" (B)\"") + "\n\n" + Good + "\n");
        Assert.Equal(2, AbDataset.Load(jsonl).Count);
        Assert.Empty(AbDataset.Validate(jsonl));
    }

    [Fact]
    public void Missing_field_names_file_index_and_field()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good, """{"question": "Q?\n\nChoices:\n (A) x\n (B) y", "answer_matching_behavior": "(A)"}"""));
        Assert.Contains("d.json", e.Message);
        Assert.Contains("item 1", e.Message);
        Assert.Contains("missing field \"answer_not_matching_behavior\"", e.Message);
    }

    [Fact]
    public void Empty_field_is_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good, Good, Good.Replace("\"Q?", "\"  ").Replace("\\n\\nChoices:\\n (A) Yes\\n (B) No", "")));
        Assert.Contains("item 2", e.Message);
        Assert.Contains("field \"question\" is empty", e.Message);
    }

    [Fact]
    public void Equal_answers_are_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good.Replace("\"(B)\"", "\"(A)\"")));
        Assert.Contains("d.json: item 0:", e.Message);
        Assert.Contains("answer_matching_behavior and answer_not_matching_behavior are both (A)", e.Message);
    }

    [Fact]
    public void Letter_not_offered_is_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good, Good.Replace("\"(B)\"", "\"(C)\"")));
        Assert.Contains("item 1", e.Message);
        Assert.Contains("answer_not_matching_behavior (C) is not offered by the question's choices (A, B)", e.Message);
    }

    [Fact]
    public void Three_choices_are_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good, Good, Good, Good.Replace("(B) No", "(B) No\\n (C) Maybe")));
        Assert.Contains("item 3", e.Message);
        Assert.Contains("question offers 3 choices (A, B, C); the A/B format needs exactly two", e.Message);
    }

    [Fact]
    public void Answer_not_of_the_form_X_is_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good.Replace("\"(A)\"", "\"A\"")));
        Assert.Contains("item 0", e.Message);
        Assert.Contains("answer_matching_behavior \"A\" is not of the form \"(X)\"", e.Message);
    }

    [Fact]
    public void Missing_choices_block_is_reported()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good.Replace("\\n\\nChoices:", "\\n\\nOptions:")));
        Assert.Contains("item 0", e.Message);
        Assert.Contains("\"Choices:\"", e.Message);
    }

    [Fact]
    public void Malformed_json_list_names_the_item_being_read()
    {
        using var t = new TempDir();
        var e = LoadFails(t, List(Good, Good, "{\"question\": \"Q\", oops}"));
        Assert.Contains("d.json: item 2: malformed JSON", e.Message);
    }

    [Fact]
    public void Malformed_jsonl_names_the_item_and_line()
    {
        using var t = new TempDir();
        var e = LoadFails(t, Good + "\n" + Good + "\n{not json\n", "d.jsonl");
        Assert.Contains("d.jsonl: item 2: malformed JSON (line 3)", e.Message);
    }

    [Fact]
    public void Truncated_list_is_malformed()
    {
        using var t = new TempDir();
        var e = LoadFails(t, "[\n" + Good + ",\n" + Good);
        Assert.Contains("item 2: malformed JSON", e.Message); // both items are complete; the list is not
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Validate_returns_every_problem_in_item_order()
    {
        using var t = new TempDir();
        var path = t.File("d.json", List(
            Good.Replace("\"(B)\"", "\"(A)\""),
            Good,
            Good.Replace("(B) No", "(B) No\\n (C) Maybe").Replace("\"(B)\"", "\"(D)\"")));
        var problems = AbDataset.Validate(path);
        Assert.Equal([0, 2, 2], problems.Select(p => p.Index!.Value));
        Assert.All(problems, p => Assert.Equal(path, p.File));
        Assert.Contains(problems, p => p.Message.Contains("3 choices"));
        Assert.Contains(problems, p => p.Message.Contains("(D) is not offered"));
    }

    [Fact]
    public void Open_ended_files_are_detected_and_validated()
    {
        using var t = new TempDir();
        var ok = t.File("test_dataset_open_ended.json", """[{"question": "Tell me."}, {"question": "Why?"}]""");
        Assert.Equal(DatasetKind.OpenEnded, AbDataset.DetectKind(ok));
        Assert.Empty(AbDataset.Validate(ok));
        Assert.Equal("Why?", AbDataset.LoadOpenEnded(ok)[1].Question);

        var bad = t.File("prompts.json", """[{"question": "Tell me."}, {"question": "  "}, {"prompt": "x"}]""");
        Assert.Equal(DatasetKind.OpenEnded, AbDataset.DetectKind(bad));
        var problems = AbDataset.Validate(bad);
        Assert.Equal(["prompts.json: item 1: field \"question\" is empty", "prompts.json: item 2: missing field \"question\""],
            problems.Select(p => p.ToString().Replace(t.Path + Path.DirectorySeparatorChar, "")));
        var e = Assert.Throws<InvalidDataException>(() => AbDataset.LoadOpenEnded(bad));
        Assert.Contains("item 1", e.Message);
    }

    [Fact]
    public void Empty_and_unreadable_files_are_problems_not_crashes()
    {
        using var t = new TempDir();
        var empty = t.File("e.json", "  \n");
        Assert.Equal("file is empty", Assert.Single(AbDataset.Validate(empty)).Message);
        Assert.NotEmpty(AbDataset.Validate(Path.Combine(t.Path, "absent.json")));
    }

    [Fact]
    public void ToJson_is_indented_lf_and_round_trips()
    {
        var items = new[] { new AbItem("Q “x”?\n\nChoices:\n (A) Yes\n (B) No", "(A)", "(B)") };
        var json = AbDataset.ToJson(items);
        Assert.DoesNotContain("\r", json);
        Assert.StartsWith("[\n    {\n        \"question\": \"Q “x”?\\n\\nChoices:", json);
        Assert.EndsWith("]\n", json);
        using var t = new TempDir();
        var p = t.File("r.json", json);
        Assert.Equal(items, AbDataset.Load(p));
        Assert.Equal(ContentHash.OfFile(p), ContentHash.OfItems(items));
    }

    [Fact]
    public void Question_parser_keeps_numbered_scenarios_in_the_body()
    {
        var q = AbQuestion.Parse("Consider:\n (1) one\n (2) two\nWhich?\n\nChoices:\n (A)only 1\n (B) only 2");
        Assert.Equal("Consider:\n (1) one\n (2) two\nWhich?", q.Body);
        Assert.Equal(["only 1", "only 2"], q.Choices.Select(c => c.Text));
        Assert.Equal("Consider:\n (1) one\n (2) two\nWhich?\n\nChoices:\n (A) only 1\n (B) only 2", q.Format());
    }
}

using System.CommandLine;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Tokenization;

namespace Caa.Cli.Common;

/// <summary>The options every model-using command shares: --model, --dtype, --device.</summary>
public sealed class ModelOptions
{
    public Option<string?> Model { get; } = new("--model") { Description = "Hugging Face model folder (config.json, safetensors, tokenizer.model). Default: the embedded model organism in data/organism." };
    public Option<string> DType { get; } = new("--dtype") { Description = "fp32, bf16 or fp16.", DefaultValueFactory = _ => "fp32" };
    public Option<string> Device { get; } = new("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "cpu" };

    public Option<int?> Threads { get; } = new("--threads")
    {
        Description = "CPU threads for tensor math (default: libtorch's, one per core). On a busy machine 1 can be several times faster for small models.",
    };

    public void AddTo(Command c) { c.Options.Add(Model); c.Options.Add(DType); c.Options.Add(Device); c.Options.Add(Threads); }

    /// <summary>The model folder: --model, or the embedded organism.</summary>
    public string ResolveFolder(ParseResult r)
    {
        var given = r.GetValue(Model);
        if (!string.IsNullOrWhiteSpace(given))
        {
            if (!Directory.Exists(given)) throw new CliException($"--model {given}: folder not found");
            return Path.GetFullPath(given);
        }
        return EmbeddedData.OrganismFolder() ?? throw new CliException("no --model given and the embedded model organism (data/organism) was not found; pass --model DIR");
    }

    public LlamaForCausalLM LoadModel(ParseResult r)
    {
        if (r.GetValue(Threads) is { } n)
        {
            if (n < 1) throw new CliException($"--threads must be at least 1; got {n}");
            TorchSharp.torch.set_num_threads(n);
        }
        return LlamaForCausalLM.FromPretrained(ResolveFolder(r), DeviceAndDType.ParseDType(r.GetValue(DType)!), DeviceAndDType.ParseDevice(r.GetValue(Device)!));
    }

    public Llama2Tokenizer LoadTokenizer(ParseResult r) => Llama2Tokenizer.Load(ResolveFolder(r));
}

/// <summary>Locates the data the repository ships (the model organism and its datasets).</summary>
public static class EmbeddedData
{
    /// <summary>data/ of the repository this tool was built from, or null.</summary>
    public static string? DataFolder()
    {
        var env = Environment.GetEnvironmentVariable("CAA_DATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Caa.sln")) && Directory.Exists(Path.Combine(d.FullName, "data")))
                return Path.Combine(d.FullName, "data");
        return null;
    }

    public static string? OrganismFolder()
    {
        var data = DataFolder();
        var dir = data is null ? null : Path.Combine(data, "organism");
        return dir is not null && File.Exists(Path.Combine(dir, "config.json")) ? dir : null;
    }
}

/// <summary>An error meant for the user: printed to stderr without a stack trace, exit code 1.</summary>
public sealed class CliException(string message) : Exception(message);

using System.CommandLine;
using Caa.Cli.Commands;
using Caa.Cli.Common;
using Caa.Interpret.OpenEnded;
using Caa.Organism;

namespace Caa.Cli;

/// <summary>The <c>caa</c> root command. Every subcommand reports user errors on stderr with exit code 1.</summary>
public static class CaaCommand
{
    public static RootCommand Build()
    {
        if (!JudgeRegistry.IsRegistered("organism")) JudgeRegistry.Register("organism", _ => new OrganismJudge());
        var root = new RootCommand("caa — Contrastive Activation Addition (Steering Llama 2 via CAA) on TorchSharp.");
        foreach (var c in ModelCommands.Create()) root.Subcommands.Add(c);
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(ReproduceCommand.Create());
        root.Subcommands.Add(NotebooksCommands.Create());
        root.Subcommands.Add(OrganismCommands.Create());
        root.Subcommands.Add(DatasetCommands.Create());
        root.Subcommands.Add(VectorCommands.Create());
        root.Subcommands.Add(AnalyzeCommands.Create());
        var eval = EvalCommands.Create();
        eval.Subcommands.Add(OpenEndedCommands.Create());
        root.Subcommands.Add(eval);
        var bench = BenchCommands.Create();
        foreach (var c in BenchModelCommands.Subcommands()) bench.Subcommands.Add(c);
        root.Subcommands.Add(bench);
        return root;
    }

    /// <summary>Parses and runs; <paramref name="output"/>/<paramref name="error"/> default to the console (tests pass writers).</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        // Progress bars redraw from a background thread: writers shared with it must be thread-safe (Console's are; a test's StringWriter is not).
        if (output is not null) config.Output = TextWriter.Synchronized(output);
        if (error is not null) config.Error = TextWriter.Synchronized(error);
        var err = config.Error;
        try
        {
            return Build().Parse(args).Invoke(config);
        }
        catch (Exception e) when (IsUserError(e))
        {
            err.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static bool IsUserError(Exception e) => e is CliException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
        or ArgumentException or KeyNotFoundException or NotSupportedException;
}

using System.CommandLine;
using Caa.Cli.Commands;

// caa-bench bench sweep …  ≡  caa bench sweep … once BenchCommands is wired into the caa root command.
var root = new RootCommand("caa-bench: the benchmark commands of caa, stand-alone.") { BenchCommands.Create(), EvalCommands.Create() };
return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = true });

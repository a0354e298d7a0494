using System.CommandLine;
using Caa.Cli;

return CaaCommand.Run(args);

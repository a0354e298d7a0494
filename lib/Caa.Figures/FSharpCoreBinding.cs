using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace Caa.Figures;

/// <summary>
/// Lets Plotly.NET 6 (built against FSharp.Core 10.1) run inside notebook kernels that already hold FSharp.Core 10.0
/// (dotnet-interactive 1.0.712001, dotnet-repl 0.3.259, VS Code's Polyglot Notebooks). A process can hold one FSharp.Core
/// in its default load context; the kernel's copy is loaded first, so the request for 10.1 fails with FileNotFoundException.
/// When that request reaches <see cref="AssemblyLoadContext.Resolving"/>, we answer with the FSharp.Core already loaded if its
/// major version matches (10.x: same API family; the calls Plotly.NET makes exist in 10.0 — checked by the notebook tests).
/// Registered when this assembly is first used, i.e. before any chart is built through <see cref="Figures"/>.
/// </summary>
public static class FSharpCoreBinding
{
    static int _registered;

#pragma warning disable CA2255 // must run before Plotly.NET's first use, wherever this assembly is loaded from (app, test, notebook)
    [ModuleInitializer]
    internal static void OnLoad() => Register();
#pragma warning restore CA2255

    /// <summary>Idempotent. Call it first if a notebook uses Plotly.NET directly before any Caa.Figures type.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        AssemblyLoadContext.Default.Resolving += Resolve;
    }

    /// <summary>What the handler answered, for diagnostics: null until it was asked.</summary>
    public static string? LastRedirect { get; private set; }

    static Assembly? Resolve(AssemblyLoadContext context, AssemblyName requested)
    {
        if (requested.Name != "FSharp.Core") return null;
        var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == "FSharp.Core");
        if (loaded is null || loaded.GetName().Version?.Major != requested.Version?.Major) return null;
        LastRedirect = $"FSharp.Core {requested.Version} → the loaded {loaded.GetName().Version}";
        return loaded;
    }
}

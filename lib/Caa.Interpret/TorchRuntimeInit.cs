using System.Runtime.CompilerServices;

namespace Caa.Interpret;

static class TorchRuntimeInit
{
#pragma warning disable CA2255 // Caa.Interpret calls torch without always touching a Caa.Model type first (e.g. Pca.Fit from a notebook)
    /// <summary>Makes libtorch loadable (Debian 12 libstdc++ workaround) before any torch call made through this assembly; idempotent.</summary>
    [ModuleInitializer]
    internal static void Init() => Caa.Model.Runtime.TorchRuntime.Initialize();
#pragma warning restore CA2255
}

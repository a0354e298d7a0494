using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace Caa.Model.Runtime;

/// <summary>
/// Makes TorchSharp's native library load on Linux systems whose libstdc++ is older than the one
/// libtorch was built against (Debian 12, Ubuntu 22.04). Runs automatically when the assembly loads;
/// call <see cref="Initialize"/> explicitly before touching <c>torch</c> in code that has not used a Caa type yet.
/// </summary>
/// <remarks>
/// <c>libLibTorchSharp.so</c> 0.107 declares a need for <c>GLIBCXX_3.4.32</c> (GCC 13), but the only symbol under
/// that version (<c>std::ios_base_library_init</c>) is never referenced by a relocation. Where the system
/// libstdc++ lacks that version we copy the library into a cache folder, mark that one version requirement
/// weak in <c>.gnu.version_r</c> (the loader then accepts it), link its sibling libraries beside it (its RUNPATH is
/// <c>$ORIGIN</c>) and load it by full path before TorchSharp's own plain-name load, which then binds to it.
/// Where the system library is new enough this does nothing. No library offers this; it is ELF surgery by hand.
/// </remarks>
public static class TorchRuntime
{
    const string MissingVersion = "GLIBCXX_3.4.32";
    const string ProbeSymbol = "_ZSt21ios_base_library_initv";
    static readonly object Gate = new();
    static bool _done;

    /// <summary>What <see cref="Initialize"/> did: "not needed", "patched: PATH", or why it could not help.</summary>
    public static string Status { get; private set; } = "not run";

#pragma warning disable CA2255 // a module initializer is the one hook that runs before any torch call made through this library
    [ModuleInitializer]
    internal static void OnLoad() => Initialize();
#pragma warning restore CA2255

    /// <summary>Idempotent; safe to call from any thread.</summary>
    public static void Initialize()
    {
        lock (Gate)
        {
            if (_done) return;
            _done = true;
            try { Status = Prepare(); }
            catch (Exception e) { Status = "failed: " + e.Message; }
        }
    }

    static string Prepare()
    {
        if (!OperatingSystem.IsLinux()) return "not needed (not Linux)";
        if (SystemHasVersion()) return "not needed (system libstdc++ has " + MissingVersion + ")";
        var original = FindLibTorchSharp();
        if (original is null) return "skipped: libLibTorchSharp.so not found beside TorchSharp.dll or in the NuGet cache";
        var nativeDirs = FindLibTorchDirs(Path.GetDirectoryName(original)!);
        if (nativeDirs.Count == 0) return "skipped: libtorch.so not found";

        var bytes = File.ReadAllBytes(original);
        if (!ElfVersionPatch.MarkVersionNeedWeak(bytes, MissingVersion)) return "not needed (" + original + " does not require " + MissingVersion + ")";
        var hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(original)))[..16].ToLowerInvariant();
        var dir = Path.Combine(CacheRoot(), hash + "-" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join("|", nativeDirs))))[..8].ToLowerInvariant());
        Directory.CreateDirectory(dir);
        // Siblings: the patched copy's RUNPATH is $ORIGIN, so its dependencies must sit beside it.
        foreach (var nd in nativeDirs)
            foreach (var so in Directory.EnumerateFiles(nd, "*.so*"))
            {
                var link = Path.Combine(dir, Path.GetFileName(so));
                if (Path.GetFileName(so) == "libLibTorchSharp.so" || File.Exists(link)) continue;
                try { File.CreateSymbolicLink(link, so); } catch (IOException) { /* another process made it */ }
            }
        var target = Path.Combine(dir, "libLibTorchSharp.so");
        if (!File.Exists(target))
        {
            var tmp = target + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, target, overwrite: true);
        }
        NativeLibrary.Load(target);
        return "patched: " + target;
    }

    static string CacheRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
        return Path.Combine(root, "caa-dotnet", "torchsharp-native");
    }

    const int RTLD_NOW = 2;
    [DllImport("libc", EntryPoint = "dlopen")] static extern IntPtr DlOpen(string file, int mode);
    [DllImport("libc", EntryPoint = "dlvsym")] static extern IntPtr DlVSym(IntPtr handle, string symbol, string version);

    static bool SystemHasVersion()
    {
        var h = DlOpen("libstdc++.so.6", RTLD_NOW);
        return h != IntPtr.Zero && DlVSym(h, ProbeSymbol, MissingVersion) != IntPtr.Zero;
    }

    static string? FindLibTorchSharp()
    {
        var asmDir = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "";
        string[] candidates =
        [
            Path.Combine(asmDir, "libLibTorchSharp.so"),
            Path.Combine(asmDir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            // NuGet cache layout: torchsharp/<v>/lib/net6.0/TorchSharp.dll and torchsharp/<v>/runtimes/linux-x64/native/
            Path.GetFullPath(Path.Combine(asmDir, "..", "..", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    static List<string> FindLibTorchDirs(string libTorchSharpDir)
    {
        var dirs = new List<string>();
        foreach (var d in new[] { libTorchSharpDir, AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native") })
            if (File.Exists(Path.Combine(d, "libtorch.so")) && !dirs.Contains(Path.GetFullPath(d))) dirs.Add(Path.GetFullPath(d));
        if (dirs.Count > 0) return dirs;
        // Notebook kernels load TorchSharp straight from the NuGet cache, where libtorch sits in its own packages.
        var torchsharpVersionDir = Path.GetFullPath(Path.Combine(libTorchSharpDir, "..", "..", ".."));
        var packagesRoot = Path.GetDirectoryName(Path.GetDirectoryName(torchsharpVersionDir));
        if (packagesRoot is null || !Directory.Exists(packagesRoot)) return dirs;
        var expected = LibTorchVersion();
        foreach (var pkg in Directory.EnumerateDirectories(packagesRoot, "libtorch-*-linux-x64*"))
            foreach (var ver in Directory.EnumerateDirectories(pkg))
            {
                if (expected is not null && Path.GetFileName(ver) != expected) continue;
                var nd = Path.Combine(ver, "runtimes", "linux-x64", "native");
                if (Directory.Exists(nd)) dirs.Add(nd);
            }
        return dirs;
    }

    /// <summary>libtorch package version TorchSharp was built against, read from its assembly metadata if present.</summary>
    static string? LibTorchVersion() =>
        typeof(torch).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "LibTorchPackageVersion")?.Value;
}

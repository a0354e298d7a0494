namespace Caa.Tests.Infrastructure;

/// <summary>Locates the repository and the read-only reference folder <c>../shared</c> beside it (or $CAA_SHARED).</summary>
public static class Shared
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared folder, or null where it is absent (a user's fresh clone).</summary>
    public static string? Root { get; } = FindShared();

    /// <summary>Full path of a file or folder inside shared/, or null where shared/ or that path is absent.</summary>
    public static string? Path(string relative)
    {
        if (Root is null) return null;
        var p = System.IO.Path.Combine(Root, relative);
        return File.Exists(p) || Directory.Exists(p) ? p : null;
    }

    /// <summary>Like <see cref="Path"/> but for tests already gated by <see cref="SharedFactAttribute"/>.</summary>
    public static string Require(string relative) =>
        Path(relative) ?? throw new InvalidOperationException("../shared/" + relative + " is absent");

    static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "Caa.sln"))) return d.FullName;
        throw new InvalidOperationException("Caa.sln not found above " + AppContext.BaseDirectory);
    }

    static string? FindShared()
    {
        var env = Environment.GetEnvironmentVariable("CAA_SHARED");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
        var p = System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot, "..", "shared"));
        return Directory.Exists(p) ? p : null;
    }
}

/// <summary>A fact that needs a path inside ../shared and is skipped, saying so, where it is absent.</summary>
public sealed class SharedFactAttribute : FactAttribute
{
    public SharedFactAttribute(string relativePath)
    {
        if (Shared.Path(relativePath) is null)
            Skip = $"../shared/{relativePath} is absent (reference data lives beside the repository; see README)";
    }
}

/// <summary>A theory that needs a path inside ../shared and is skipped, saying so, where it is absent.</summary>
public sealed class SharedTheoryAttribute : TheoryAttribute
{
    public SharedTheoryAttribute(string relativePath)
    {
        if (Shared.Path(relativePath) is null)
            Skip = $"../shared/{relativePath} is absent (reference data lives beside the repository; see README)";
    }
}

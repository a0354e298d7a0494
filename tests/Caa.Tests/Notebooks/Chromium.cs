using System.Diagnostics;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Caa.Tests.Notebooks;

/// <summary>Headless Chromium (Debian's <c>chromium</c> package; <c>.ci/run</c> installs it) for checking that exported figures draw.</summary>
static class Chromium
{
    /// <summary>$CAA_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH; null where none is installed.</summary>
    public static string? Path { get; } = Find();

    static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("CAA_CHROMIUM");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(n => dirs.Select(d => System.IO.Path.Combine(d, n))).FirstOrDefault(File.Exists);
    }

    /// <summary>The page's DOM after its scripts ran (network blocked, so a page that needs a CDN fails to draw).</summary>
    public static string DumpDom(string htmlFile) => Run(htmlFile, "--dump-dom", out _);

    /// <summary>A screenshot of the page (network blocked).</summary>
    public static string Screenshot(string htmlFile, string pngFile, int width = 900, int height = 700)
    {
        Run(htmlFile, $"--screenshot={pngFile}", out _, $"--window-size={width},{height}");
        if (!File.Exists(pngFile)) throw new InvalidOperationException($"chromium wrote no screenshot {pngFile}");
        return pngFile;
    }

    static string Run(string htmlFile, string action, out string stderr, params string[] extra)
    {
        var profile = Directory.CreateTempSubdirectory("caa-chromium-").FullName;
        try
        {
            var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException("chromium not found"))
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            // --no-sandbox: CI runs as root. Host resolution mapped to nothing: the page must draw offline.
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", $"--user-data-dir={profile}",
                         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--hide-scrollbars" }.Concat(extra))
                psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(action);
            psi.ArgumentList.Add(new Uri(System.IO.Path.GetFullPath(htmlFile)).AbsoluteUri);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var err = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish {action} of {htmlFile} within 2 minutes");
            }
            stderr = err.Result;
            if (p.ExitCode != 0) throw new InvalidOperationException($"chromium exited with {p.ExitCode} on {htmlFile}: {stderr}");
            return stdout.Result;
        }
        finally
        {
            try { Directory.Delete(profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>What a screenshot shows: the share of non-white pixels, the number of strongly coloured pixels (plot traces; axes and text are grey) and the luminance variance.</summary>
    public static (double NonWhiteShare, int Colored, double LuminanceVariance) Inspect(string pngFile)
    {
        using var image = Image.Load<Rgba32>(pngFile);
        long nonWhite = 0, colored = 0, n = 0;
        double sum = 0, sumSq = 0;
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width; x++)
            {
                var p = image[x, y];
                var max = Math.Max(p.R, Math.Max(p.G, p.B));
                var min = Math.Min(p.R, Math.Min(p.G, p.B));
                if (min < 245) nonWhite++;
                if (max - min > 60) colored++;
                var lum = 0.2126 * p.R + 0.7152 * p.G + 0.0722 * p.B;
                sum += lum; sumSq += lum * lum; n++;
            }
        var mean = sum / n;
        return ((double)nonWhite / n, (int)colored, sumSq / n - mean * mean);
    }
}

/// <summary>A fact that needs headless Chromium; skipped, saying how to get it, where it is not installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Path is null) Skip = "chromium not found (Debian: apt-get install -y chromium; .ci/run installs it; or set CAA_CHROMIUM)";
    }
}

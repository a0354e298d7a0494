using static TorchSharp.torch;

namespace Caa.Model;

/// <summary>Parses the device and dtype names used on the command line and in notebook settings.</summary>
public static class DeviceAndDType
{
    /// <summary>"fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16".</summary>
    public static ScalarType ParseDType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" or "half" => ScalarType.Float16,
        _ => throw new ArgumentException($"unknown dtype '{name}': use fp32, bf16 or fp16"),
    };

    /// <summary>Short name of a floating dtype ("fp32", "bf16", "fp16").</summary>
    public static string Name(ScalarType t) => t switch
    {
        ScalarType.Float32 => "fp32", ScalarType.BFloat16 => "bf16", ScalarType.Float16 => "fp16", _ => t.ToString(),
    };

    /// <summary>"cpu", "cuda", "cuda:1", or "auto" (CUDA when available, else CPU).</summary>
    public static Device ParseDevice(string name)
    {
        var n = name.Trim().ToLowerInvariant();
        if (n == "auto") return cuda.is_available() ? CUDA : CPU;
        if (n.StartsWith("cuda") && !cuda.is_available())
            throw new ArgumentException($"device '{name}' requested but CUDA is not available (build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU)");
        try { return device(n); }
        catch (Exception e) { throw new ArgumentException($"unknown device '{name}': use cpu, cuda, cuda:N or auto", e); }
    }
}

using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

[assembly: Caa.Tests.Infrastructure.TensorScopePerTest]

namespace Caa.Tests.Infrastructure;

/// <summary>
/// Runs every test inside a TorchSharp DisposeScope, so tensors a test leaves behind are freed on the test's own thread when it
/// ends, not by the GC finalizer. TorchSharp passes raw native handles: a temporary whose wrapper the finalizer frees while a
/// native call still uses it crashes the process (we saw SIGSEGV test-host crashes once every few runs without this).
/// Tensors meant to outlive a test (static fixtures) must be detached with <c>DetachFromDisposeScope()</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
public sealed class TensorScopePerTestAttribute : BeforeAfterTestAttribute
{
    [ThreadStatic] static Stack<(DisposeScope Scope, int Thread)>? _scopes;

    public override void Before(MethodInfo methodUnderTest)
    {
        Caa.Model.Runtime.TorchRuntime.Initialize();
        (_scopes ??= new()).Push((torch.NewDisposeScope(), Environment.CurrentManagedThreadId));
    }

    public override void After(MethodInfo methodUnderTest)
    {
        // An async test may end on another thread; its scope then belongs to the thread that started it and is left alone.
        if (_scopes is { Count: > 0 } s && s.Peek().Thread == Environment.CurrentManagedThreadId) s.Pop().Scope.Dispose();
    }
}

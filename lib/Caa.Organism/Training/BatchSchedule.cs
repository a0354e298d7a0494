namespace Caa.Organism.Training;

/// <summary>
/// The seeded data order: which conversations form the batch of every step. Each epoch is a fresh permutation (seeded by the
/// run's seed and the epoch), cut into pools of <see cref="TrainingOptions.SortPoolBatches"/> batches that are sorted by length
/// and cut into batches of similar length; the epoch's batches are then shuffled. A step's batch depends only on (seed, step),
/// so the data position of a run is its step count and a resumed run reads exactly the batches it would have read.
/// </summary>
public sealed class BatchSchedule
{
    readonly int[] _lengths;
    readonly int _batchSize, _pool;
    readonly long _seed;
    readonly Dictionary<int, int[][]> _epochs = new();

    public BatchSchedule(IReadOnlyList<int> lengths, int batchSize, long seed, int sortPoolBatches = 64)
    {
        if (lengths.Count == 0) throw new ArgumentException("no training conversations", nameof(lengths));
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _lengths = lengths.ToArray();
        _batchSize = batchSize;
        _pool = batchSize * Math.Max(1, sortPoolBatches);
        _seed = seed;
    }

    /// <summary>Batches per epoch (the last batch of a pool may be smaller).</summary>
    public int BatchesPerEpoch => Epoch(0).Length;

    /// <summary>(epoch, index within the epoch) of 0-based step <paramref name="step"/>.</summary>
    public (int Epoch, int Index) Position(int step) => (step / BatchesPerEpoch, step % BatchesPerEpoch);

    /// <summary>Conversation indices of the batch of 0-based step <paramref name="step"/>.</summary>
    public IReadOnlyList<int> BatchAt(int step)
    {
        var (e, i) = Position(step);
        return Epoch(e)[i];
    }

    int[][] Epoch(int epoch)
    {
        lock (_epochs)
        {
            if (_epochs.TryGetValue(epoch, out var cached)) return cached;
            var rng = new Random(CorpusGenerator.StableSeed((int)(_seed & 0x7FFFFFFF), "train-order", epoch));
            var order = Enumerable.Range(0, _lengths.Length).ToArray();
            rng.Shuffle(order);
            var batches = new List<int[]>();
            for (int start = 0; start < order.Length; start += _pool)
            {
                var pool = order.Skip(start).Take(_pool).OrderBy(i => _lengths[i]).ThenBy(i => i).ToArray();
                for (int b = 0; b < pool.Length; b += _batchSize) batches.Add(pool.Skip(b).Take(_batchSize).ToArray());
            }
            var result = batches.ToArray();
            rng.Shuffle(result);
            if (_epochs.Count > 4) _epochs.Clear();
            return _epochs[epoch] = result;
        }
    }
}

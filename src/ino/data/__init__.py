"""Dataset readers and writers: DAVIS-layout folders, videos, augmentation, synthetic benchmarks."""

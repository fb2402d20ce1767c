"""CIFAR-10 from local files, and the input: scaling, whitening, augmentation, batches."""

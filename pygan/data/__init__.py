"""Data (application layer): toy distributions, image data sets, batch streams.

Where things go: a new toy distribution → :mod:`.toy` (register it in ``TOY_DISTRIBUTIONS``);
a new image data set → :mod:`.images` (a loader returning float32 (N, C, H, W) in [−1, 1] and
int64 labels, named in ``IMAGE_DATA`` and :func:`load_images`); a new way of handing batches to
the trainer → :mod:`.streams`; a paired image-to-image task (input computed from the target) →
:mod:`.paired` (named in ``PAIR_TASKS``). Everything returns host NumPy arrays; the trainer moves them to
the backend's device.
"""
from .toy import (TOY_DISTRIBUTIONS, ToyDistribution, gaussian_mixture_1d, gaussian_mixture_1d_pdf, grid,
                  grid_means, ring, ring_means, swiss_roll, toy)
from .images import (IMAGE_DATA, MNIST_MIRRORS, MNIST_SHA256, ChecksumError, digits_split, download,
                     download_mnist, load_digits, load_images, load_mnist, mnist_file_names, read_idx, write_idx,
                     load_mnist_subset, mnist_source, describe_source)
from .streams import ImageStream, ToyStream, batches
from .paired import PAIR_TASKS, load_pairs, lower_half, make_inputs, read_image_file, sobel_edges

TOY_DATA = tuple(TOY_DISTRIBUTIONS)

__all__ = ["ring", "grid", "swiss_roll", "gaussian_mixture_1d", "gaussian_mixture_1d_pdf", "ring_means",
           "grid_means", "ToyDistribution", "toy", "TOY_DISTRIBUTIONS", "TOY_DATA", "IMAGE_DATA",
           "load_digits", "digits_split", "load_images", "read_idx", "write_idx", "load_mnist",
           "mnist_file_names", "load_mnist_subset", "mnist_source", "describe_source", "download", "download_mnist", "ChecksumError", "MNIST_MIRRORS", "MNIST_SHA256",
           "ToyStream", "ImageStream", "batches", "PAIR_TASKS", "load_pairs", "make_inputs", "sobel_edges",
           "lower_half", "read_image_file"]

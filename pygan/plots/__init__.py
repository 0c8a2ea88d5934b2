"""Figures (application layer): PNG files drawn with matplotlib's Agg backend, written atomically.

:mod:`.figures` holds the pictures every run can use (image grids, 2-D scatter over a critic
surface with the generator's gradient field, 1-D histograms, latent paths) and a GAN run's metric
curves; :mod:`.vae` the pictures of an autoencoder / VAE / CVAE and a VAE run's curves; :mod:`.pix2pix` an
image-to-image run's rows (input | output | target) and curves. A new
model family's figures go in a module of their own here. Every function takes host arrays and a
path, writes the file and closes its figure.
"""
from . import pix2pix, vae
from .figures import (curves, grad_norm_figure, histogram_1d, image_grid, interpolation_paths, latent_interpolation,
                      scatter_2d, smooth, tile_images)

__all__ = ["image_grid", "tile_images", "scatter_2d", "histogram_1d", "interpolation_paths", "latent_interpolation",
           "curves", "grad_norm_figure", "smooth", "vae", "pix2pix"]

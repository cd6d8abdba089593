"""The truncated backward's cosine with the exact gradient on real scenes: Fashion-MNIST test images, L = 1
and L_t = 9, 32 x 32 (64 images) and 96 x 96 (16 images), a depth-4, width-16 U-Net, freshly drawn systems.

    python benchmarks/truncated_cosine.py [--K 5]

bench.py's group ``truncated`` measures the same on random images (and the time); this one asks what the
gradient of a real batch looks like, where the L = 1 figure depends on the scenes (docs/performance.md).
"""

from __future__ import annotations

import argparse
import sys

import floors
import prkd
from prkd.data import load_splits, to_images


def cosines(K: int) -> list[dict]:
    """One row per (size, L): the cosines of the truncated (K) and exact gradients of phi and psi."""
    raw = load_splits(prkd.make("quick", n_train=64, n_val=64, n_test=64).data).test
    rows = []
    for size, images in ((32, 64), (96, 16)):
        scenes = to_images(raw[:images], size)
        for L in (1, 9):
            base = dict(image_size=size, unet_depth=4, unet_width=16, n_masks=L,
                        mode="teacher" if L > 1 else "e2e")
            exact = prkd.PRSystem(prkd.make("ladder", **base))
            cut = prkd.PRSystem(prkd.make("ladder", backward="truncated", backward_iterations=K, **base))
            rows.append({"size": size, "L": L, "images": images,
                         **floors.gradient_cosines(exact, cut, scenes)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--K", type=int, default=5, help="iterations the truncated gradient flows through")
    args = parser.parse_args(argv)
    print("| size | L | images | cosine phi | cosine psi |\n|---|---|---|---|---|")
    for row in cosines(args.K):
        print(f"| {row['size']} | {row['L']} | {row['images']} | {row['cosine_phi']:.4f} | "
              f"{row['cosine_psi']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a copy of a ``dataset_index.csv`` with a ``group`` column, so near-copies share a fold.

The shared real clips hold two mixes of each of two Filosax pieces
(``filosax_01_Bass_Drums`` / ``filosax_01_Piano_Drums``, ...). With folds dealt by track id,
one mix of a piece can be in a fold model's training set and the other in its held-out
fold. The copy names each row's group by the first capture group of ``--group-pattern``
matched against the audio file's stem (no match: the row stays a group of its own) and
makes every path absolute, so the copy can live anywhere (``benchmarks/out/``, never
committed: it lists third-party recordings).

Example (from the repository root)::

    python benchmarks/grouped_index.py ../shared/realdata/dataset_index.csv \\
        benchmarks/out/realdata_grouped.csv --group-pattern '^(filosax_\\d+)_'
    beatgrid adapt --index benchmarks/out/realdata_grouped.csv --out benchmarks/out/adapt_grouped --folds 5 \\
        --config benchmarks/configs/adapt_realdata.yaml
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path, PurePosixPath

import pandas as pd

from beatgrid.data.dataset_index import read_dataset_index


def grouped_index(index_csv: str | Path, group_pattern: str) -> pd.DataFrame:
    """The index's rows (paths made absolute) with ``group``: the pattern's first capture
    group in the audio stem, ``""`` where it does not match."""
    pattern = re.compile(group_pattern)
    if pattern.groups < 1:
        raise ValueError(f"--group-pattern {group_pattern!r} has no capture group to name the group by")
    rows = []
    for row in read_dataset_index(index_csv):
        match = pattern.search(PurePosixPath(row.audio_path).stem)
        rows.append({"dataset": row.dataset, "audio_path": str(Path(row.audio_path).resolve()),
                     "beats_path": str(Path(row.beats_path).resolve()), "has_downbeats": row.has_downbeats,
                     "group": match.group(1) if match else row.group})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="the dataset_index.csv to copy")
    parser.add_argument("out", help="the copy to write (with absolute paths and a group column)")
    parser.add_argument("--group-pattern", required=True,
                        help="regular expression searched in each audio stem; its first group names the group")
    args = parser.parse_args()
    table = grouped_index(args.index, args.group_pattern)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    groups = table.loc[table["group"] != "", "group"].value_counts()
    print(f"{args.out}: {len(table)} rows, {len(groups)} group(s) of {int(groups.sum())} rows: "
          + ", ".join(f"{name} ({count})" for name, count in groups.items()))


if __name__ == "__main__":
    main()

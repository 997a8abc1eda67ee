"""python -m bgeq_utils.export METHOD [...]: export one method's model and print its verification.

    python -m bgeq_utils.export int8-dynamic-onnx --out /tmp/minilm-int8 [--python /path/to/venv/bin/python]

Prints the folder, its size, the load code and the verification table (cosine to bgeq's encoder of the same
method and options, and to FP32); exits 2 when the export is refused or fails its check.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bgeq_utils.export", description=__doc__.splitlines()[0])
    ap.add_argument("method")
    ap.add_argument("--model", default="default")
    ap.add_argument("--weights", default="pretrained")
    ap.add_argument("--out", default=None, help="output folder (default: outputs/<run>/export/<method>)")
    ap.add_argument("--run", default=None)
    ap.add_argument("--options", default=None, help="method options as JSON, e.g. '{\"weight_type\": \"QUInt8\"}'")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--python", default=None, help="interpreter that reloads the folder (default: this one)")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--max-texts", type=int, default=50)
    a = ap.parse_args(argv)

    # after the arguments parse: a usage error or --help costs no torch import
    import pandas as pd

    from bgeq_utils.core import paths
    from bgeq_utils.export import ExportError, ExportVerificationError, export
    warnings.simplefilter("ignore")
    try:
        r = export(a.method, model=a.model, weights=a.weights, out_dir=a.out, run=a.run, device=a.device,
                   options=json.loads(a.options) if a.options else None, python=a.python, overwrite=a.overwrite,
                   max_texts=a.max_texts)
    except ExportVerificationError as e:
        print(e, file=sys.stderr)
        with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 90):
            print(e.report.table().to_string(index=False), file=sys.stderr)
        return 2
    except (ExportError, ValueError, KeyError, FileNotFoundError) as e:
        print(f"not exported: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}",
              file=sys.stderr)
        return 2
    print(f"{r.label} -> {paths.shown(r.out_dir)} ({r.format}, {r.size_mb:.1f} MB in {len(r.files)} files, "
          f"{r.seconds} s)")
    print("\nload code:\n" + r.load_code)
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 90):
        print(r.table().to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

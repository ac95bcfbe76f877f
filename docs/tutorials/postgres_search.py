"""Tutorial: a search on PostgreSQL with several workers, and the dashboard
(docs/tutorials/postgres.md).

The study lives in the database named by ``MEMXBAR_STORAGE`` (a SQLAlchemy URL such as
``postgresql://user:password@127.0.0.1:5432/memxbar``); without it, in an SQLite file, which
works the same way for workers on one machine. 1. create the study and enqueue its trials,
2. start two workers as separate processes (``memxbar study worker``, as on other machines),
3. report from the storage, 4. start the dashboard, ask it for the study, stop it.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from memxbar.studies.report import results_table, write_report
from memxbar.studies.runner import load_study, run_study

HERE = Path(__file__).parent
STORAGE = os.environ.get("MEMXBAR_STORAGE", "sqlite:///runs/search/study.db")
MEMXBAR = str(Path(sys.executable).with_name("memxbar"))  # the command line of this install
PORT = int(os.environ.get("MEMXBAR_DASHBOARD_PORT", "8765"))

if __name__ == "__main__":
    shutil.copy(HERE / "search.toml", "search.toml")
    Path("runs/search").mkdir(parents=True, exist_ok=True)

    # 1. Create the study in the storage and enqueue its 6 trials; run none here.
    created = run_study("search.toml", storage=STORAGE, workers=0, progress=False)
    print(f"storage {created.storage}: {created.remaining} trials waiting")  # password hidden

    # 2. Two workers. On other machines: the same command, the same file and storage URL.
    workers = [subprocess.Popen([MEMXBAR, "study", "worker", "search.toml", "--storage", STORAGE],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    for i, w in enumerate(workers):
        out, _ = w.communicate(timeout=600)
        summary = next((ln for ln in out.splitlines() if ln.startswith("study ")), out[-300:])
        print(f"worker {i}: exit code {w.returncode}; {summary}")

    # 3. Every trial is in the storage, whichever worker ran it.
    write_report("runs/search", storage=STORAGE)
    study, spec = load_study("runs/search", storage=STORAGE)
    table = results_table(study, spec)
    table = table[(table.state == "COMPLETE") & (table.t_label == "1 y")]
    print(table[["trial", "worker", "device", "tile_rows", "adc_bits", "dac_bits", "accuracy",
                 "energy_per_inference", "pareto"]].to_string(index=False))
    print(f"{table.worker.nunique()} workers ran {len(table)} trials")

    # 4. The dashboard (optuna-dashboard, the `dashboard` extra) on the same storage.
    #    By hand: memxbar study dashboard runs/search --storage URL, then open the address.
    dash = subprocess.Popen([MEMXBAR, "study", "dashboard", "runs/search", "--storage", STORAGE,
                             "--port", str(PORT)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(180):  # up to 90 s for the server to start
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/studies",
                                            timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("the dashboard did not answer")
        for s in studies:
            print(f"dashboard at http://127.0.0.1:{PORT}: study {s['study_name']!r}, "
                  f"directions {', '.join(s['directions'])}")
    finally:
        dash.terminate()
        dash.wait(timeout=30)

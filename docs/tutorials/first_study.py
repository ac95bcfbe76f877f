"""Tutorial: your first study (docs/tutorials/first-study.md).

Runs the study file beside this script (4 designs, about 20 s on two cores), writes its report
and prints the accuracy of each design from 1 s to 10 years after programming.
Run from any directory: ``python docs/tutorials/first_study.py``; results go to
``runs/first-study/`` under the current directory.
"""

from pathlib import Path

from memxbar.studies.report import results_table, write_report
from memxbar.studies.runner import load_study, run_study

STUDY_FILE = Path(__file__).with_name("first-study.toml")

if __name__ == "__main__":  # run_study may start worker processes: keep the guard
    summary = run_study(STUDY_FILE, progress=False)  # the same as `memxbar study run FILE`
    print(summary.describe())

    files = write_report(summary.output)  # the same as `memxbar study report runs/first-study`
    print("report files:", ", ".join(sorted(p.name for p in files.values())))

    study, spec = load_study(summary.output)
    table = results_table(study, spec)  # one row per design and evaluation time
    table = table[table.state == "COMPLETE"]
    wide = table.pivot_table(index=["device", "adc_bits"], columns="t_label",
                             values="accuracy", sort=False)
    times = list(dict.fromkeys(table.sort_values("t_s").t_label))  # 1 s, 1 d, 10 y
    print("accuracy on the test images:")
    print(wide[times].round(3).to_string())
    energy = table.groupby(["device", "adc_bits"]).energy_per_inference.first() * 1e9
    print("energy per inference (nJ):")
    print(energy.round(3).to_string())

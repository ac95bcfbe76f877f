"""Tutorial: bring your own device (docs/tutorials/own-device.md).

1. your pulse measurements as a CSV file (here: the packaged Jo et al. 2010 Ag:a-Si data,
   standing in for yours), 2. fit a device model and check the fit, 3. describe it,
4. use it in a study beside a published preset. About a minute on two cores.
"""

import shutil
from importlib import resources
from pathlib import Path

from memxbar.devices import measured
from memxbar.devices.plots import plot_device
from memxbar.studies.report import results_table, write_report
from memxbar.studies.runner import load_study, run_study

HERE = Path(__file__).parent

if __name__ == "__main__":
    # 1. The measurement file, here in the long layout: columns phase (potentiation |
    #    depression), pulse_number, conductance_s (the _s suffix: siemens). Replace this copy
    #    with your own file; measured.LAYOUTS lists every layout read_pulse_file accepts.
    packaged = resources.files("memxbar.devices") / "data" / "rram_agasi_jo2010_ltp_ltd.csv"
    Path("my_pulses.csv").write_text(packaged.read_text())
    data = measured.read_pulse_file("my_pulses.csv")  # units from the header, or units="uS"
    print(f"potentiation {data.potentiation.shape}, depression {data.depression.shape}, "
          f"units {data.units}")

    # 2. Fit, and compare the fitted model's simulated pulse trains with the data.
    conditions = dict(write_voltage=3.2, write_time=300e-6, write_energy=6.4e-11,
                      read_voltage=0.5, read_time=5e-9)  # yours; as in own-device.toml
    report = measured.fit_report(data.potentiation, data.depression, units=data.units,
                                 source="my Ag:a-Si device (Jo et al. 2010 data)", **conditions)
    print(report.summary())
    measured.plot_fit(report, "fit.png")  # measured vs simulated, dG(G), step noise(G)

    # 3. The fitted device is a Device like any preset: parameters, program/read/pulse, plots.
    device = report.device
    print(device.describe())
    plot_device(device, "device.png", title="my device (fitted)")

    # 4. In a study: [hardware.measured.my-device] names the file; the study fits it again
    #    at run time (and refuses a changed file for a study already run).
    shutil.copy(HERE / "own-device.toml", "own-device.toml")
    summary = run_study("own-device.toml", progress=False)
    print(summary.describe())
    write_report(summary.output)  # report.md, tables and plots in runs/own-device/report/
    study, spec = load_study(summary.output)
    table = results_table(study, spec)
    print(table[["device", "t_label", "accuracy", "training_pulses", "programming_energy"]]
          .to_string(index=False))

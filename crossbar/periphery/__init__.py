"""Periphery of one crossbar: input DAC, output ADC (with its registry of cost models), the
quantizers they share and the digital shift-add.

- :mod:`.quantize`: signed uniform quantizers (units, levels), straight-through, shift-add.
- :mod:`.dac`: :class:`DAC`, the row driver (codes, read cycles, energy and area).
- :mod:`.adc`: :class:`ADC`, the converter (quantization, ranging, conversion time, energy and
  area from its model).
- :mod:`.adc_models`: :data:`ADC_MODELS`, the registry of ADC designs ("survey", "neurosim").
"""

from memxbar.crossbar.periphery.adc import ADC, RANGE_MODES
from memxbar.crossbar.periphery.adc_models import ADC_MODELS, ADCModel
from memxbar.crossbar.periphery.dac import DAC, SIGNED_MODES
from memxbar.crossbar.periphery.quantize import (
           MAX_BITS,
           quantize,
           shift_add,
           signed_levels,
           straight_through,
)

__all__ = ["ADC", "ADCModel", "ADC_MODELS", "DAC", "MAX_BITS", "RANGE_MODES", "SIGNED_MODES",
           "quantize", "shift_add", "signed_levels", "straight_through"]

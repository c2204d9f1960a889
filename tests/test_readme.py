"""The README's example prints exactly what the README says it prints."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _block(text, marker):
    m = re.search(rf"<!-- {marker} -->\n(?:.*\n)*?```\w*\n(.*?)```", text, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


LINES = {"readme-save": 25}  # the saving example shows three ways; the others are short


@pytest.mark.parametrize("name", ["readme", "readme-grad", "readme-keras", "readme-cf",
                                  "readme-save"])
def test_readme_example_output_is_real(tmp_path, name):
    readme = (ROOT / "README.md").read_text()
    code, expected = _block(readme, f"{name}-example"), _block(readme, f"{name}-output")
    (tmp_path / "example.py").write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KILN_DUMP_IR", None)
    out = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    assert len(code.strip().splitlines()) <= LINES.get(name, 16)


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_the_keras_catalogue_is_the_codes():
    import framework as tf
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- catalogue -->\n(.*?)<!-- /catalogue -->", readme, re.S)
    assert block and block.group(1) == tf.keras.utils.catalogue_markdown()


# keras.layers of TensorFlow 2.21's Keras (3.x): every Layer class it exports
KERAS_LAYERS = """
Activation ActivityRegularization AdaptiveAveragePooling1D AdaptiveAveragePooling2D
AdaptiveAveragePooling3D AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add
AdditiveAttention AlphaDropout Attention AugMix AutoContrast Average AveragePooling1D
AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization
Bidirectional CategoryEncoding CenterCrop Concatenate
ContrastLimitedAdaptiveHistogramEqualization Conv1D Conv1DTranspose Conv2D Conv2DTranspose
Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D
Convolution1DTranspose Convolution2D Convolution2DTranspose Convolution3D
Convolution3DTranspose Cropping1D Cropping2D Cropping3D CutMix Dense DepthwiseConv1D
DepthwiseConv2D Discretization Dot Dropout ELU EinsumDense Embedding Equalization Flatten
FlaxLayer GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D
GlobalAveragePooling2D GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D
GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D
GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization GroupQueryAttention HashedCrossing
Hashing Identity InputLayer IntegerLookup JaxLayer LSTM LSTMCell Lambda Layer
LayerNormalization LeakyReLU Masking MaxNumBoundingBoxes MaxPool1D MaxPool2D MaxPool3D
MaxPooling1D MaxPooling2D MaxPooling3D Maximum MelSpectrogram Minimum MixUp
MultiHeadAttention Multiply Normalization PReLU Permute Pipeline RMSNormalization RNN
RandAugment RandomBrightness RandomColorDegeneration RandomColorJitter RandomContrast
RandomCrop RandomElasticTransform RandomErasing RandomFlip RandomGaussianBlur
RandomGrayscale RandomHue RandomInvert RandomPerspective RandomPosterization
RandomRotation RandomSaturation RandomSharpness RandomShear RandomTranslation RandomZoom
ReLU RepeatVector Rescaling Reshape Resizing ReversibleEmbedding STFTSpectrogram
SeparableConv1D SeparableConv2D SeparableConvolution1D SeparableConvolution2D SimpleRNN
SimpleRNNCell Softmax Solarization SpatialDropout1D SpatialDropout2D SpatialDropout3D
SpectralNormalization StackedRNNCells StringLookup Subtract TFSMLayer TextVectorization
TimeDistributed TorchModuleWrapper UnitNormalization UpSampling1D UpSampling2D UpSampling3D
Wrapper ZeroPadding1D ZeroPadding2D ZeroPadding3D
""".split()


def test_every_keras_layer_is_in_kiln_or_listed_as_missing_with_a_reason():
    from framework.keras import layers
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- missing-layers -->\n(.*?)<!-- /missing-layers -->", readme, re.S)
    assert block
    listed = set(re.findall(r"\b[A-Z]\w+", block.group(1)))
    missing = [n for n in KERAS_LAYERS if not hasattr(layers, n)]
    assert [n for n in missing if n not in listed] == []
    assert [n for n in listed & set(KERAS_LAYERS) if hasattr(layers, n)] == []  # stale

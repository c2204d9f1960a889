"""Keras layers, as ``tf.keras.layers``."""

from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: F401
from .augment import RandomRotation, RandomTranslation, RandomZoom  # noqa: F401
from .base import Input, KerasTensor, Layer  # noqa: F401
from .conv import (  # noqa: F401
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    DepthwiseConv2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    SeparableConv1D,
    SeparableConv2D,
)
from .conv_recurrent import ConvLSTM2D  # noqa: F401
from .core import (  # noqa: F401
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dot,
    Dropout,
    Embedding,
    Flatten,
    InputLayer,
    Lambda,
    Masking,
    Maximum,
    Minimum,
    Multiply,
    Permute,
    Reshape,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .lookup import (  # noqa: F401
    CategoryEncoding,
    Discretization,
    Hashing,
    IntegerLookup,
    StringLookup,
    TextVectorization,
)
from .noise import (  # noqa: F401
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    PReLU,
    SpatialDropout1D,
    SpatialDropout2D,
)
from .normalization import (  # noqa: F401
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
)
from .preprocessing import (  # noqa: F401
    CenterCrop,
    Normalization,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    Rescaling,
    Resizing,
)
from .recurrent import (  # noqa: F401
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    StackedRNNCells,
)
from .reshaping import (  # noqa: F401
    ELU,
    ActivityRegularization,
    Cropping1D,
    Cropping2D,
    Identity,
    LeakyReLU,
    ReLU,
    RepeatVector,
    Softmax,
    UnitNormalization,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from .volumetric import (  # noqa: F401
    AveragePooling3D,
    Conv3D,
    GlobalAveragePooling3D,
    GlobalMaxPooling3D,
    MaxPooling3D,
)
from .wrappers import Bidirectional, TimeDistributed  # noqa: F401

AvgPool2D, MaxPool2D, MaxPool1D, AvgPool1D = (AveragePooling2D, MaxPooling2D, MaxPooling1D,
                                              AveragePooling1D)
Convolution2D, Convolution1D = Conv2D, Conv1D
Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
Convolution3D, MaxPool3D, AvgPool3D = Conv3D, MaxPooling3D, AveragePooling3D
GlobalAvgPool3D, GlobalMaxPool3D = GlobalAveragePooling3D, GlobalMaxPooling3D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D

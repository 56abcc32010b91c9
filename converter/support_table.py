"""What TF.js 4.22 implements: the one table the converter consults.

Every entry was read from tfjs-layers 4.22 (`js_runner/node_modules/@tensorflow/
tfjs-layers/dist/`, the `.js` files mirror `src/*.ts` at tag tfjs-v4.22.0).
Keys are Keras (snake_case) names; TF.js camel-cases every key and string value
on load (`utils/serialization_utils.js: convertPythonicToTs`), so `"channels_last"`
arrives as `"channelsLast"`.

To find where a layer's rule lives, look up its class name in `LAYERS`.
"""

import dataclasses

ANY = object()  # a `neutral` of ANY: the key never changes inference


@dataclasses.dataclass(frozen=True)
class Arg:
    """How one Keras config key maps onto TF.js.

    kind: "keep" (TF.js reads it with the same meaning), "drop" (TF.js never
    reads it: removed when its value is neutral, refused otherwise), or the
    kind of nested object: "activation", "initializer", "regularizer",
    "constraint", "dtype".
    allowed: for "keep", the values TF.js honours (None: any value).
    neutral: for "drop", the values that leave inference unchanged.
    to: the TF.js key, when it differs from the Keras one.
    why: the reason a refused value is refused.
    """

    kind: str
    allowed: tuple | None = None
    neutral: tuple | object = ()
    to: str | None = None
    why: str = ""


KEEP = Arg("keep")
ACTIVATION = Arg("activation")
INITIALIZER = Arg("initializer")
REGULARIZER = Arg("regularizer")
CONSTRAINT = Arg("constraint")


def one_of(*values, why=""):
    return Arg("keep", allowed=values, why=why)


def drop_if(*neutral, why=""):
    return Arg("drop", neutral=neutral, why=why)


def drop_always(why=""):
    return Arg("drop", neutral=ANY, why=why)


def rename(to):
    return Arg("keep", to=to)


# --- Keys every layer may carry (engine/topology.js Layer constructor). ---
COMMON = {
    "name": KEEP,
    "trainable": KEEP,
    "dtype": Arg("dtype"),
    "batch_input_shape": KEEP,
    "batch_size": KEEP,
}

# --- Argument groups shared by several layers. ---
CHANNELS = ("channels_last", "channels_first")
PADDING = one_of(
    "valid",
    "same",
    why="TF.js 4.22 throws NotImplementedError for padding='causal'",
)
WEIGHTED = {
    "activation": ACTIVATION,
    "use_bias": KEEP,
    "bias_initializer": INITIALIZER,
    "bias_regularizer": REGULARIZER,
    "bias_constraint": CONSTRAINT,
    "activity_regularizer": REGULARIZER,
}
KERNEL = {
    "kernel_initializer": INITIALIZER,
    "kernel_regularizer": REGULARIZER,
    "kernel_constraint": CONSTRAINT,
}
CONV = {
    **WEIGHTED,
    **KERNEL,
    "filters": KEEP,
    "kernel_size": KEEP,
    "strides": KEEP,
    "padding": PADDING,
    "data_format": one_of(*CHANNELS),
    "dilation_rate": KEEP,
    "groups": drop_if(1, why="TF.js 4.22 convolutions have no groups"),
}
TRANSPOSE_CONV = {
    **CONV,
    # Conv2DTranspose.call never passes dilationRate to conv2dTranspose.
    "dilation_rate": drop_if(1, why="TF.js 4.22 transposed convolutions ignore dilation_rate"),
    "output_padding": drop_if(None, why="TF.js 4.22 transposed convolutions ignore output_padding"),
}
POOL = {
    "pool_size": KEEP,
    "strides": KEEP,
    "padding": PADDING,
    "data_format": one_of(*CHANNELS),
}
# Pooling1D and GlobalPooling1D never read dataFormat: they always pool axis 1.
POOL_1D = {**POOL, "data_format": drop_if("channels_last", why="TF.js 4.22 1D pooling is channels_last only")}
GLOBAL_POOL_1D = {
    "data_format": drop_if("channels_last", why="TF.js 4.22 1D global pooling is channels_last only"),
    "keepdims": drop_if(False, why="TF.js 4.22 global pooling has no keepdims"),
}
GLOBAL_POOL_2D = {
    "data_format": one_of(*CHANNELS),
    "keepdims": drop_if(False, why="TF.js 4.22 global pooling has no keepdims"),
}
NOISE_SEED = {"seed": drop_always(why="only used in training")}
RNN = {
    "return_sequences": KEEP,
    "return_state": KEEP,
    "go_backwards": KEEP,
    # TF.js keeps states across calls exactly like Keras (recurrent.js resetStates).
    "stateful": KEEP,
    # recurrent.js: "Ignoring unroll = true ... imperative backend": same numbers.
    "unroll": KEEP,
    "time_major": drop_if(False, why="TF.js 4.22 RNNs are batch-major only"),
    # rnn() carries the previous output through masked steps, i.e. False.
    "zero_output_for_mask": drop_if(False, why="TF.js 4.22 repeats the last output on masked steps"),
    "activity_regularizer": drop_if(None, why="TF.js 4.22 RNN layers ignore activity_regularizer"),
}
CELL = {
    "units": KEEP,
    "activation": ACTIVATION,
    "use_bias": KEEP,
    "kernel_initializer": INITIALIZER,
    "recurrent_initializer": INITIALIZER,
    "bias_initializer": INITIALIZER,
    "kernel_regularizer": REGULARIZER,
    "recurrent_regularizer": REGULARIZER,
    "bias_regularizer": REGULARIZER,
    "kernel_constraint": CONSTRAINT,
    "recurrent_constraint": CONSTRAINT,
    "bias_constraint": CONSTRAINT,
    "dropout": KEEP,  # inference ignores dropout in both
    "recurrent_dropout": KEEP,
    "seed": drop_always(why="only used for dropout in training"),
}
GATED = {
    "recurrent_activation": ACTIVATION,
    # TF.js always runs implementation 2 (recurrent.js comment); results equal.
    "implementation": drop_always(why="an implementation detail"),
}
GRU_CELL = {
    **CELL,
    **GATED,
    # recurrent.js GRUCell: "GRUCell does not support reset_after parameter set to true."
    "reset_after": one_of(False, why="TF.js 4.22 GRU throws for reset_after=True (the Keras default)"),
}
LSTM_CELL = {**CELL, **GATED, "unit_forget_bias": KEEP}
BATCH_NORM = {
    "axis": KEEP,
    "momentum": KEEP,
    "epsilon": KEEP,
    "center": KEEP,
    "scale": KEEP,
    "beta_initializer": INITIALIZER,
    "gamma_initializer": INITIALIZER,
    "moving_mean_initializer": INITIALIZER,
    "moving_variance_initializer": INITIALIZER,
    "beta_regularizer": REGULARIZER,
    "gamma_regularizer": REGULARIZER,
    "beta_constraint": CONSTRAINT,
    "gamma_constraint": CONSTRAINT,
    "renorm": drop_if(False, why="TF.js 4.22 has no batch renormalization"),
    "renorm_clipping": drop_always(why="only used with renorm"),
    "renorm_momentum": drop_always(why="only used with renorm"),
    "synchronized": drop_if(False, why="TF.js 4.22 has no synchronized batch norm"),
    "fused": drop_always(why="an implementation detail"),
    "virtual_batch_size": drop_if(None, why="TF.js 4.22 has no virtual batches"),
    "adjustment": drop_if(None, why="TF.js 4.22 has no adjustment function"),
}
LAYER_NORM = {
    "axis": KEEP,
    "epsilon": KEEP,
    "center": KEEP,
    "scale": KEEP,
    "beta_initializer": INITIALIZER,
    "gamma_initializer": INITIALIZER,
    "beta_regularizer": REGULARIZER,
    "gamma_regularizer": REGULARIZER,
    # LayerNormalization's constructor reads no constraints.
    "beta_constraint": drop_if(None, why="TF.js 4.22 LayerNormalization ignores constraints"),
    "gamma_constraint": drop_if(None, why="TF.js 4.22 LayerNormalization ignores constraints"),
    "rms_scaling": drop_if(False, why="TF.js 4.22 LayerNormalization has no RMS scaling"),
}
LORA = {
    "lora_rank": drop_if(None, why="TF.js 4.22 has no LoRA"),
    "lora_alpha": drop_always(why="only used with lora_rank"),
    "quantization_config": drop_if(None, why="TF.js 4.22 has no quantized layers"),
}

# --- The layer table: TF.js class name -> {Keras key: Arg}. ---
LAYERS = {
    # engine/input_layer.js
    "InputLayer": {
        "batch_input_shape": KEEP,
        "batch_shape": rename("batch_input_shape"),  # Keras 3 name
        "sparse": one_of(False, why="TF.js 4.22 has no sparse inputs"),
        "ragged": drop_if(False, why="TF.js 4.22 has no ragged inputs"),
        "optional": drop_if(False, why="TF.js 4.22 has no optional inputs"),
    },
    # layers/core.js
    "Dense": {**WEIGHTED, **KERNEL, **LORA, "units": KEEP},
    "Dropout": {"rate": KEEP, "noise_shape": KEEP, "seed": KEEP},
    "SpatialDropout1D": {"rate": KEEP, "noise_shape": KEEP, "seed": KEEP},
    # Flatten permutes channels_first to channels_last first, as Keras does.
    "Flatten": {"data_format": one_of(*CHANNELS)},
    "Activation": {"activation": ACTIVATION},
    "RepeatVector": {"n": KEEP},
    "Reshape": {"target_shape": KEEP},
    "Permute": {"dims": KEEP},
    "Masking": {"mask_value": KEEP},
    # layers/embeddings.js
    "Embedding": {
        **LORA,
        "input_dim": KEEP,
        "output_dim": KEEP,
        "embeddings_initializer": INITIALIZER,
        "embeddings_regularizer": REGULARIZER,
        "activity_regularizer": REGULARIZER,
        "embeddings_constraint": CONSTRAINT,
        "mask_zero": KEEP,
        "input_length": KEEP,
    },
    # layers/convolutional.js
    # conv1dWithBias transposes a channels_first input but never transposes back.
    "Conv1D": {
        **CONV,
        "data_format": one_of("channels_last", why="TF.js 4.22 Conv1D returns channels_last for channels_first input"),
    },
    "Conv2D": CONV,
    "Conv3D": CONV,
    "Conv2DTranspose": TRANSPOSE_CONV,
    "Conv3DTranspose": TRANSPOSE_CONV,
    "SeparableConv2D": {
        **{k: v for k, v in CONV.items() if k not in KERNEL},
        "depth_multiplier": KEEP,
        "depthwise_initializer": INITIALIZER,
        "depthwise_regularizer": REGULARIZER,
        "depthwise_constraint": CONSTRAINT,
        "pointwise_initializer": INITIALIZER,
        "pointwise_regularizer": REGULARIZER,
        "pointwise_constraint": CONSTRAINT,
        # tf_keras writes these though SeparableConv never uses them; TF.js throws
        # when any is non-null (SeparableConv constructor).
        "kernel_initializer": drop_always(why="unused by separable convolutions"),
        "kernel_regularizer": drop_always(why="unused by separable convolutions"),
        "kernel_constraint": drop_always(why="unused by separable convolutions"),
    },
    "Cropping2D": {"cropping": KEEP, "data_format": one_of(*CHANNELS)},
    # UpSampling2D bilinear calls resizeBilinear without half-pixel centers;
    # Keras (tf.image.resize) uses half-pixel centers. Nearest agrees for the
    # integer factors UpSampling2D uses.
    "UpSampling2D": {
        "size": KEEP,
        "data_format": one_of(*CHANNELS),
        "interpolation": one_of("nearest", why="TF.js 4.22 bilinear upsampling lacks half-pixel centers"),
    },
    # layers/convolutional_depthwise.js: call passes dilationRate = null.
    "DepthwiseConv2D": {
        **WEIGHTED,
        "kernel_size": KEEP,
        "strides": KEEP,
        "padding": PADDING,
        "data_format": one_of(*CHANNELS),
        "dilation_rate": drop_if(1, why="TF.js 4.22 DepthwiseConv2D ignores dilation_rate"),
        "depth_multiplier": KEEP,
        "depthwise_initializer": INITIALIZER,
        "depthwise_regularizer": REGULARIZER,
        "depthwise_constraint": CONSTRAINT,
        "groups": drop_if(1, why="TF.js 4.22 convolutions have no groups"),
    },
    # layers/padding.js
    "ZeroPadding2D": {"padding": KEEP, "data_format": one_of(*CHANNELS)},
    # layers/pooling.js
    "MaxPooling1D": POOL_1D,
    "AveragePooling1D": POOL_1D,
    "MaxPooling2D": POOL,
    "AveragePooling2D": POOL,
    "MaxPooling3D": POOL,
    "AveragePooling3D": POOL,
    "GlobalAveragePooling1D": GLOBAL_POOL_1D,
    "GlobalMaxPooling1D": GLOBAL_POOL_1D,
    "GlobalAveragePooling2D": GLOBAL_POOL_2D,
    "GlobalMaxPooling2D": GLOBAL_POOL_2D,
    # layers/merge.js (Dot on rank > 3 throws; the rank is not in the config)
    "Add": {},
    "Multiply": {},
    "Average": {},
    "Maximum": {},
    "Minimum": {},
    "Concatenate": {"axis": KEEP},
    "Dot": {"axes": KEEP, "normalize": KEEP},
    # layers/normalization.js (BatchNormalization on rank > 4 throws; rank unknown here)
    "BatchNormalization": BATCH_NORM,
    "LayerNormalization": LAYER_NORM,
    # layers/advanced_activations.js
    "ReLU": {
        "max_value": KEEP,
        "negative_slope": drop_if(0.0, why="TF.js 4.22 ReLU has no negative_slope"),
        "threshold": drop_if(0.0, why="TF.js 4.22 ReLU has no threshold"),
    },
    "LeakyReLU": {"alpha": KEEP, "negative_slope": rename("alpha")},
    "PReLU": {
        "alpha_initializer": INITIALIZER,
        "alpha_regularizer": REGULARIZER,
        "alpha_constraint": CONSTRAINT,
        "shared_axes": KEEP,
    },
    "ELU": {"alpha": one_of(1.0, why="TF.js 4.22 ELU throws for alpha other than 1.0")},
    "ThresholdedReLU": {"theta": KEEP},
    "Softmax": {"axis": one_of(-1, why="TF.js 4.22 softmax throws for a non-last axis at predict time")},
    # layers/recurrent.js
    "SimpleRNN": {**RNN, **CELL},
    "GRU": {**RNN, **GRU_CELL},
    "LSTM": {**RNN, **LSTM_CELL},
    "SimpleRNNCell": CELL,
    "GRUCell": GRU_CELL,
    "LSTMCell": LSTM_CELL,
    "RNN": {**RNN, "cell": KEEP},
    "StackedRNNCells": {"cells": KEEP},
    # layers/convolutional_recurrent.js
    "ConvLSTM2D": {
        **RNN,
        **LSTM_CELL,
        **{k: CONV[k] for k in ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate")},
        "unroll": one_of(False, why="TF.js 4.22 ConvLSTM2D throws for unroll=True"),
    },
    # layers/wrappers.js
    "TimeDistributed": {"layer": KEEP},
    "Bidirectional": {
        "layer": KEEP,
        "merge_mode": one_of("concat", "sum", "mul", "ave", None),
        # TF.js always builds the backward layer from `layer` with go_backwards
        # flipped; support.py checks that Keras's backward_layer is that copy.
        "backward_layer": Arg("backward_layer"),
    },
    # layers/noise.js
    "GaussianNoise": {"stddev": KEEP, **NOISE_SEED},
    "GaussianDropout": {"rate": KEEP, **NOISE_SEED},
    "AlphaDropout": {"rate": KEEP, "noise_shape": KEEP, **NOISE_SEED},
    # layers/preprocessing/
    "Rescaling": {"scale": KEEP, "offset": KEEP},
    # CenterCrop shifts by 1 column when input width - width == 1 (center_crop.js
    # "if (wBuffer === 0) wBuffer = 1"); the input shape is not in the config.
    "CenterCrop": {
        "height": KEEP,
        "width": KEEP,
        "data_format": drop_if("channels_last", why="TF.js 4.22 CenterCrop is channels_last only"),
    },
    "CategoryEncoding": {
        "num_tokens": KEEP,
        "output_mode": one_of("one_hot", "multi_hot", "count"),
        "sparse": one_of(False, why="TF.js 4.22 has no sparse outputs"),
    },
}

# Layers TF.js refuses above an input rank (batch included), which no config records: the lowering stage, which
# follows ranks from the inputs, refuses them where it knows the rank (code rank_limit).
RANK_LIMITS = {
    "Dot": (3, "tfjs-layers merge.ts Dot.build throws for inputs of rank above 3"),
}

# TF.js registers these, but their inference differs from Keras whatever the config.
DIVERGENT_LAYERS = {
    # image_resizing.js: resizeBilinear(x, size, alignCorners = !cropToAspectRatio),
    # and it never crops; Keras resizes with half-pixel centers.
    "Resizing": "TF.js 4.22 Resizing uses align_corners and never crops, so it differs from Keras",
    # random_width.js call() resizes on every call, training or not; Keras is identity at inference.
    "RandomWidth": "TF.js 4.22 RandomWidth resizes at inference too, where Keras passes inputs through",
}

# Keras class names TF.js knows under another name (the official converter's renames).
CLASS_RENAMES = {
    "BatchNormalizationV1": "BatchNormalization",
    "BatchNormalizationV2": "BatchNormalization",
    "UnifiedGRU": "GRU",
    "UnifiedLSTM": "LSTM",
}

# Containers TF.js registers (models.js, engine/training.js); the translator owns them.
CONTAINERS = frozenset({"Sequential", "Model", "Functional"})

# tf_keras layers applying a TensorFlow function to a tensor (its name in the config, its constants in the
# node): converter/lowering/ops.py lowers the functions it lists; the rest are refused, naming the function.
TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})

# Layers that run Python code TF.js cannot see.
PYTHON_LAYERS = frozenset(
    {
        "Lambda",
        "TFOpLambda",
        "SlicingOpLambda",
        "JaxLayer",
        "FlaxLayer",
        "TorchModuleWrapper",
        "TFSMLayer",
    }
)

# Standard Keras layers TF.js 4.22 lacks. RandomHeight and layers/nlp/* exist in the source tree but are not
# registered in the 4.22 bundle (tf-layers.js). Many reach support only when no lowering applied:
# converter/lowering_table.py rewrites Subtract, Identity, the 1D layers, 3D global pooling, Normalization,
# Group-, Unit- and RMSNormalization, and removes augmentation and spatial dropout layers first; these
# classes stay listed for the forms it refuses (its not_lowerable issue then says why).
MISSING_LAYERS = frozenset(
    {
        "Subtract",
        "Normalization",
        "Discretization",
        "Attention",
        "AdditiveAttention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "ZeroPadding1D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping3D",
        "UpSampling1D",
        "UpSampling3D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling3D",
        "Conv1DTranspose",
        "SeparableConv1D",
        "DepthwiseConv1D",
        "GroupNormalization",
        "UnitNormalization",
        "SpectralNormalization",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "ActivityRegularization",
        "Identity",
        "ConvLSTM1D",
        "ConvLSTM3D",
        "RandomHeight",
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomCrop",
        "RandomTranslation",
        "RandomContrast",
        "RandomBrightness",
        "TextVectorization",
        "StringLookup",
        "IntegerLookup",
        "Hashing",
        "HashedCrossing",
        "EinsumDense",
        "CuDNNGRU",
        "CuDNNLSTM",
        "RMSNormalization",
        "GroupedQueryAttention",
        "AdaptiveAveragePooling1D",
        "AdaptiveAveragePooling2D",
        "AdaptiveAveragePooling3D",
        "AdaptiveMaxPooling1D",
        "AdaptiveMaxPooling2D",
        "AdaptiveMaxPooling3D",
        "AugMix",
        "AutoContrast",
        "ContrastLimitedAdaptiveHistogramEqualization",
        "CutMix",
        "Equalization",
        "MaxNumBoundingBoxes",
        "MelSpectrogram",
        "MixUp",
        "Pipeline",
        "RandAugment",
        "RandomColorDegeneration",
        "RandomColorJitter",
        "RandomElasticTransform",
        "RandomErasing",
        "RandomGaussianBlur",
        "RandomGrayscale",
        "RandomHue",
        "RandomInvert",
        "RandomPerspective",
        "RandomPosterization",
        "RandomSaturation",
        "RandomSharpness",
        "RandomShear",
        "ReversibleEmbedding",
        "STFTSpectrogram",
        "Solarization",
        "DenseFeatures",
        "LocallyConnected1D",
        "LocallyConnected2D",
        "Layer",
        "Wrapper",
        "AbstractRNNCell",
    }
)

# --- Activations (activations.js); value: TF.js name, or None when Keras 3 differs. ---
ACTIVATIONS = {
    "elu": "elu",
    "selu": "selu",
    "relu": "relu",
    "relu6": "relu6",
    "linear": "linear",
    "sigmoid": "sigmoid",
    "softplus": "softplus",
    "softsign": "softsign",
    "tanh": "tanh",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "gelu": "gelu",  # TF.js uses erf, as Keras's default approximate=False
    "mish": "mish",
    "swish": "swish",
    "silu": "swish",  # Keras 3 name: x * sigmoid(x), TF.js swish with alpha 1
    "hard_sigmoid": "hard_sigmoid",  # 0.2x + 0.5: tf_keras only, see HARD_SIGMOID_KERAS
}
# backend/tfjs_backend.js hardSigmoid is clip(0.2x + 0.5); tf_keras 2.21 computes the
# same, Keras 3.15 computes relu6(x + 3) / 6 (checked by running both).
HARD_SIGMOID_KERAS = frozenset({2})

# --- Initializers (initializers.js). TF.js builds them even when weights are loaded,
# so each must construct; its values never reach the outputs. ---
INITIALIZERS = {
    "Zeros": "Zeros",
    "Ones": "Ones",
    "Constant": "Constant",
    "RandomUniform": "RandomUniform",
    "RandomNormal": "RandomNormal",
    "TruncatedNormal": "TruncatedNormal",
    "Identity": "Identity",
    "IdentityInitializer": "Identity",
    "VarianceScaling": "VarianceScaling",
    "Orthogonal": "Orthogonal",
    "OrthogonalInitializer": "Orthogonal",
    "GlorotUniform": "GlorotUniform",
    "GlorotNormal": "GlorotNormal",
    "HeNormal": "HeNormal",
    "HeUniform": "HeUniform",
    "LecunNormal": "LeCunNormal",  # TF.js spells it LeCun
    "LecunUniform": "LeCunUniform",
    "LeCunNormal": "LeCunNormal",
    "LeCunUniform": "LeCunUniform",
}
# The config keys each TF.js initializer reads; other keys are dropped.
INITIALIZER_KEYS = {
    "Constant": ("value",),
    "RandomUniform": ("minval", "maxval", "seed"),
    "RandomNormal": ("mean", "stddev", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "Identity": ("gain",),
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "Orthogonal": ("gain", "seed"),
}
# keras_format/initializer_config.js VALID_DISTRIBUTION_VALUES lacks
# untruncated_normal; TF.js's nearest is "normal" (only the start values differ).
DISTRIBUTION_RENAMES = {"untruncated_normal": "normal"}
# Keras string shorthands, as TF.js's INITIALIZER_IDENTIFIER_REGISTRY_SYMBOL_MAP reads them.
INITIALIZER_STRINGS = {
    "zeros": "Zeros",
    "ones": "Ones",
    "constant": "Constant",
    "random_uniform": "RandomUniform",
    "random_normal": "RandomNormal",
    "truncated_normal": "TruncatedNormal",
    "identity": "Identity",
    "variance_scaling": "VarianceScaling",
    "orthogonal": "Orthogonal",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_normal": "HeNormal",
    "he_uniform": "HeUniform",
    "lecun_normal": "LeCunNormal",
    "lecun_uniform": "LeCunUniform",
}

# --- Regularizers (regularizers.js registers only L1L2). ---
# Keras class -> (l1 key or None, l2 key or None) to fill L1L2 {l1, l2}.
REGULARIZERS = {
    "L1L2": ("l1", "l2"),
    "L1": ("l1", None),
    "L2": (None, "l2"),
}
REGULARIZER_STRINGS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "l1l2": "L1L2"}

# --- Constraints (constraints.js): class -> keys TF.js reads. ---
CONSTRAINTS = {
    "MaxNorm": ("max_value", "axis"),
    "MinMaxNorm": ("min_value", "max_value", "rate", "axis"),
    "NonNeg": (),
    "UnitNorm": ("axis",),
}
CONSTRAINT_STRINGS = {
    "max_norm": "MaxNorm",
    "min_max_norm": "MinMaxNorm",
    "non_neg": "NonNeg",
    "unit_norm": "UnitNorm",
}

# --- dtypes: TF.js layers compute in float32; inputs may also be int32. ---
LAYER_DTYPES = frozenset({"float32"})
INPUT_DTYPES = {"float32": "float32", "int32": "int32", "int64": "int32"}

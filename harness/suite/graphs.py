"""Tier 2, `graph`: topologies: multi-io, shared layers, nested models, masking, encoder-decoder."""

from __future__ import annotations

from harness.suite import builders as b
from harness.suite.declare import QUANTIZED, TFK, WEBGPU_MASKED_RNN, graph, only, tokens

GRAPH_CASES = [
    # nested models producing the model's outputs: at one and two levels, called twice, Sequential and Functional
    graph(b.autoencoder, ["Functional", "Dense"]),
    graph(b.nested_output_two_levels, ["Functional", "Dense"]),
    graph(b.nested_output_shared, ["Functional", "Dense"]),
    graph(b.nested_output_mixed, ["Functional", "Sequential", "Dense"]),
    graph(b.multi_io, ["Conv2D", "GlobalAveragePooling2D", "Dense", "Concatenate"], quantized=QUANTIZED),
    graph(b.shared_layer, ["Dense", "Average"]),
    graph(b.shared_layer_chain, ["Dense"]),
    graph(b.nested_sequential, ["Sequential", "Dense"]),
    graph(b.nested_functional, ["Functional", "Dense", "Add"]),
    graph(b.nested_two_levels, ["Sequential", "Functional", "Dense"]),
    graph(
        b.residual_block,
        ["Conv2D", "BatchNormalization", "Activation", "Add", "ReLU", "GlobalAveragePooling2D", "Dense"],
        quantized=QUANTIZED,
    ),
    graph(b.inception_block, ["Conv2D", "MaxPooling2D", "Concatenate", "GlobalMaxPooling2D"]),
    graph(b.squeeze_excite, ["GlobalAveragePooling2D", "Dense", "Reshape", "Multiply"], quantized=QUANTIZED),
    graph(b.output_is_input_branch, ["Dense"]),
    *[
        graph(b.embedding_mask(rnn), ["Embedding", rnn, "Dense"], inputs=tokens(7, 12), known=(WEBGPU_MASKED_RNN,))
        for rnn in ("LSTM", "GRU", "SimpleRNN")
    ],
    graph(
        b.embedding_mask_bidirectional,
        ["Embedding", "Bidirectional", "LSTM"],
        inputs=tokens(6),
        known=(WEBGPU_MASKED_RNN,),
        **only(TFK, "Keras 3 zero-fills masked steps here: an expected refusal in the reject tier"),
    ),
    graph(b.encoder_decoder, ["LSTM", "TimeDistributed", "Dense"], quantized=QUANTIZED),
    graph(b.encoder_decoder_gru, ["GRU"]),
    graph(b.stacked_rnn, ["LSTM", "GRU", "SimpleRNN"]),
    graph(b.stacked_bidirectional, ["Bidirectional", "LSTM", "Dense"]),
    graph(b.conv_autoencoder, ["Conv2D", "MaxPooling2D", "Conv2DTranspose", "UpSampling2D"], quantized=QUANTIZED),
    graph(b.sequential_with_input, ["Sequential", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]),
    graph(b.sequential_built, ["Sequential", "Dense", "BatchNormalization"]),
    graph(b.sequential_input_shape, ["Sequential", "Dense"]),
]

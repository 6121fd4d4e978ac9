"""The CRF output of a tagger: emission scores from the head, a linear-chain CRF over the words."""
from typing import Dict, Optional, Tuple

import tensorflow as tf

from ner.layers.crf import CRF
from ner.layers.recurrent import RecurrentStack
from ner.lexical import LEXICAL_IDS
from ner.models.word_shape import LexicalScores
from ner.tagging import FIRST_PIECE_MASK, SpanReading


class CrfOutput:
    """Mixin for a `TokenClassifier` whose head (built with `softmax=False`) gives emission scores to
    `self.crf`; the model then owns its loss and decodes with Viterbi.

    Inputs gain `first_piece_mask` [B, T] int32 (1 on each word's first piece); the CRF runs over those
    positions only, gathered into a compact word sequence (`ner.layers.crf`), so its transitions connect
    consecutive words. `call` returns `(latent [B, T, latent_dim], probabilities [B, T, C])` where the
    probabilities are the CRF's per-word marginals (forward-backward) on first pieces and 1 / C elsewhere;
    `decode` gives the Viterbi path, which evaluation, `predict` and serving use; `predict_span_outputs`
    adds each word's span marginal in that path (the entity confidence of `predict` and serving).

    With `lexical` (a `LexicalScores`), the emission scores are the head's plus the scores of the word's
    lexical features (`lexical_ids` [B, T, K] in the inputs). With `word_rnn` (a `RecurrentStack`), what the
    head reads is first passed through that stack over the words: masked to the first pieces, it skips
    every other position, so it reads the same word sequence from live word pieces and from cached word
    vectors.
    """

    crf: CRF
    lexical: Optional[LexicalScores]
    word_rnn: Optional[RecurrentStack]  # set in the constructor, or Keras would not track its variables

    def head_inputs(self, inputs: Dict[str, tf.Tensor], training=None, sample_encoder: bool = False) -> tf.Tensor:
        """The model's own head inputs [B, T, D], through `word_rnn` over the words when it has one
        ([B, T, H]; positions off the first pieces carry no meaning)."""
        vectors = super().head_inputs(inputs, training=training, sample_encoder=sample_encoder)
        if self.word_rnn is None:
            return vectors
        return self.word_rnn(vectors, mask=inputs[FIRST_PIECE_MASK] > 0, training=True if sample_encoder else training)

    def check_scores_head(self) -> None:
        if self.head.softmax:
            raise ValueError("the head under a CRF must give scores: build it with softmax=False")

    def emission_scores(self, outputs: tf.Tensor, inputs: Dict[str, tf.Tensor], copies: int = 1) -> tf.Tensor:
        """The CRF's emission scores [copies·B, T, C] from the head's outputs for `copies` stacked copies of
        the batch: the outputs, plus the lexical features' scores when the model has them."""
        if self.lexical is None:
            return outputs
        return outputs + tf.tile(self.lexical(inputs[LEXICAL_IDS]), [copies, 1, 1])

    def probabilities_from_head(self, outputs: tf.Tensor, inputs: Dict[str, tf.Tensor], copies: int = 1) -> tf.Tensor:
        """The CRF's marginals [copies·B, T, C] from the head's outputs for `copies` stacked copies of the batch."""
        return self.crf(self.emission_scores(outputs, inputs, copies), tf.tile(inputs[FIRST_PIECE_MASK], [copies, 1]))

    def latent_and_scores(self, inputs: Dict[str, tf.Tensor], training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """One pass below the CRF: the head's latent [B, T, L] and the emission scores [B, T, C]."""
        latent, outputs = self.head(self.head_inputs(inputs, training=training), training=training)
        return latent, self.emission_scores(outputs, inputs)

    def forward_loss(self, inputs: Dict[str, tf.Tensor], labels: tf.Tensor, training=None,
                     score_offset: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The CRF's negative log-likelihood per word (scalar) and the marginals [B, T, C], from one pass.

        labels: [B, T] int32, a label id on each first piece and `IGNORE_LABEL` elsewhere.
        score_offset: [C] or None: added to the emission scores of the loss (the logit-adjusted loss), not
          to those of the returned marginals.
        """
        _, scores = self.latent_and_scores(inputs, training=training)
        first_pieces = inputs[FIRST_PIECE_MASK]
        loss_scores = scores if score_offset is None else scores + tf.cast(score_offset, scores.dtype)
        return self.crf.loss(loss_scores, first_pieces, labels), self.crf(scores, first_pieces)

    def predict_outputs(self, inputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(latent [B, T, L], marginals [B, T, C], Viterbi label ids [B, T] int32)` from one pass of the
        layers below the CRF (dropout off)."""
        latent, scores = self.latent_and_scores(inputs, training=False)
        first_pieces = inputs[FIRST_PIECE_MASK]
        return latent, self.crf(scores, first_pieces), self.crf.decode(scores, first_pieces)

    def predict_span_outputs(self, inputs: Dict[str, tf.Tensor],
                             reading: SpanReading) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(latent [B, T, L], marginals [B, T, C], Viterbi label ids [B, T] int32, span marginals [B, T])` from
        one pass with dropout off: `predict_outputs`' three, and on each first piece the probability of the
        Viterbi path's span that holds the word, read by `reading` (`CRF.span_marginals`)."""
        latent, scores = self.latent_and_scores(inputs, training=False)
        first_pieces = inputs[FIRST_PIECE_MASK]
        label_ids = self.crf.decode(scores, first_pieces)
        return (latent, self.crf(scores, first_pieces), label_ids,
                self.crf.span_marginals(scores, first_pieces, label_ids, reading))

    def decode(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """Viterbi label ids [B, T] int32 on first pieces, `IGNORE_LABEL` elsewhere (dropout off)."""
        _, scores = self.latent_and_scores(inputs, training=False)
        return self.crf.decode(scores, inputs[FIRST_PIECE_MASK])

    def decoded_log_probability(self, inputs: Dict[str, tf.Tensor],
                                labelled: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """`(latent [B, T, L], log p [B])`: each row's Viterbi path's log-probability under the CRF, from one
        pass with dropout off; the CRF's words are the first pieces, which are the `labelled` positions."""
        latent, scores = self.latent_and_scores(inputs, training=False)
        return latent, self.crf.best_path_log_probability(scores, inputs[FIRST_PIECE_MASK])

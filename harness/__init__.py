"""tfjs-certify's harness: the reference suite, the pipeline that certifies it, and its reports.

Importing it fixes TensorFlow's set-up for this process and its workers (see `harness.tf_policy`).
"""

from harness import tf_policy

tf_policy.apply()

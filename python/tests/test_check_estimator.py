"""scikit-learn's own estimator checks, with exactly the expected failures that
scikit-learn lists for its BernoulliRBM (``PER_ESTIMATOR_XFAIL_CHECKS``): its
``score_samples`` flips random bits, so scores change with the rows' order and subset."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from rbm import BernoulliRBM

# scikit-learn 1.9's sklearn/utils/_test_common/instance_generator.py, BernoulliRBM.
EXPECTED_FAILED = {
    "check_methods_subset_invariance": "fails for the decision_function method",
    "check_methods_sample_order_invariance": "fails for the score_samples method",
}


@parametrize_with_checks(
    [BernoulliRBM()], expected_failed_checks=lambda est: EXPECTED_FAILED
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

"""movielens-tfx: an end-to-end TFX recommender pipeline on MovieLens.

Installed (editable for development) so that Beam workers, TFX executors and
containers import `pipeline`, `components`, `modules` and `movielens` as
ordinary packages. Exact versions come from requirements.lock; the ranges here
only state what the code needs.
"""

from setuptools import find_packages, setup

setup(
    name='movielens-tfx',
    version='0.1.0',
    description='Production-grade TFX recommender pipeline on MovieLens',
    python_requires='>=3.9,<3.11',
    packages=find_packages(
        include=['pipeline', 'pipeline.*', 'components', 'components.*',
                 'modules', 'modules.*', 'movielens', 'movielens.*',
                 'serving', 'serving.*', 'report', 'report.*']),
    py_modules=['runner_local'],
    install_requires=[
        'tfx[kfp]>=1.16,<1.17',
        'tensorflow>=2.16,<2.17',
        'tf-keras>=2.16,<2.17',
        'tensorflow-transform>=1.16,<1.17',
        'tensorflow-data-validation>=1.16,<1.17',
        'tensorflow-model-analysis>=0.47,<0.48',
        'tensorflow-recommenders==0.7.7',
        'tensorflow-serving-api>=2.16,<2.17',
        'apache-beam[gcp]>=2.47,<3',
        'dill',
        'matplotlib',  # The run report's plots.
        'setuptools<81',  # pkg_resources, for TensorBoard 2.16.
    ],
    extras_require={
        'dev': ['pytest'],
        # The approximate retrieval index (--retrieval-index scann): the
        # ScaNN release built for TensorFlow 2.16 (tensorflow~=2.16.0).
        'scann': ['scann==1.3.2'],
    },
)

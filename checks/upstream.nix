# Upstream files the offline manifest check validates against: the pinned CRDs and
# Kargo step-config schemas, laid out like the CI mirror (../shared/upstream). The flake
# fetches each by URL and SHA-256; tests/test_upstream_pins.py proves this list and the
# mirror's SHA256SUMS agree, so CI and `nix flake check` validate against the same bytes.
[
  {
    path = "arc-0.14.2/actions.github.com_autoscalinglisteners.yaml";
    url = "https://raw.githubusercontent.com/actions/actions-runner-controller/gha-runner-scale-set-0.14.2/charts/gha-runner-scale-set-controller/crds/actions.github.com_autoscalinglisteners.yaml";
    sha256 = "46a122d05090d06b791ccd027cda73e0f0a639b8d8fd733b1a15efcf6000063b";
  }
  {
    path = "arc-0.14.2/actions.github.com_autoscalingrunnersets.yaml";
    url = "https://raw.githubusercontent.com/actions/actions-runner-controller/gha-runner-scale-set-0.14.2/charts/gha-runner-scale-set-controller/crds/actions.github.com_autoscalingrunnersets.yaml";
    sha256 = "8c6299f835fdb774789a02ce2eb296e1c83d0cc7ad7260a988523c6055a56d9c";
  }
  {
    path = "arc-0.14.2/actions.github.com_ephemeralrunners.yaml";
    url = "https://raw.githubusercontent.com/actions/actions-runner-controller/gha-runner-scale-set-0.14.2/charts/gha-runner-scale-set-controller/crds/actions.github.com_ephemeralrunners.yaml";
    sha256 = "b4991b4aeb29bc21f872eb94fe1aa5fcaa9208681fc58ab32947dd27d1e7f00a";
  }
  {
    path = "arc-0.14.2/actions.github.com_ephemeralrunnersets.yaml";
    url = "https://raw.githubusercontent.com/actions/actions-runner-controller/gha-runner-scale-set-0.14.2/charts/gha-runner-scale-set-controller/crds/actions.github.com_ephemeralrunnersets.yaml";
    sha256 = "3943d931cbe5b9615d5d9948285ee60d13fcd2cf31737fb30ca433d7b822fada";
  }
  {
    path = "argo-cd-v3.4.4/application-crd.yaml";
    url = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.4/manifests/crds/application-crd.yaml";
    sha256 = "fa8a0c7f8127f85bbbf57467e7c659ec7d47e7d162cc76c1b07482ebf2b98f49";
  }
  {
    path = "argo-cd-v3.4.4/applicationset-crd.yaml";
    url = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.4/manifests/crds/applicationset-crd.yaml";
    sha256 = "51f69883c692698fbcf3c82455c07c0f6413899ac9d96565a9e8395c0196f58d";
  }
  {
    path = "argo-cd-v3.4.4/appproject-crd.yaml";
    url = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.4/manifests/crds/appproject-crd.yaml";
    sha256 = "7b99337686905b444864c84b1305938a7bfbca9b5f4e2c5d5d2de4acae16ceb3";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_clusterconfigs.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_clusterconfigs.yaml";
    sha256 = "ba96f2a17488e0f3878d1b4290a63fc7649c4e6b5d97577b4728e3ab49ba6f28";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_clusterpromotiontasks.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_clusterpromotiontasks.yaml";
    sha256 = "2d24b663ab1b2480aa5dcd3909e9978fb4e7a3ccb014ad7192fdd207301960b8";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_freights.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_freights.yaml";
    sha256 = "cc5e5ee2b611f7c6f79c69f798229f06e1303bf47592b9f4502b1f5af746aee1";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_projectconfigs.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_projectconfigs.yaml";
    sha256 = "ec3102999ba2b30d38273ea5a72ead3a30e70d84690e6522e87f084e6623a217";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_projects.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_projects.yaml";
    sha256 = "05ed175743aef3809bc996530e8cd0c30d7c2a3483d81d3b7a6c28c75a8a4ad8";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_promotions.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_promotions.yaml";
    sha256 = "8e9ede109552bbbb7e2d852b2e4c5ddf60cf758939ce6b6b5ea59d3a330d2cb8";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_promotiontasks.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_promotiontasks.yaml";
    sha256 = "a054faba9839aebc0835c167b56511974a839e98a458a1216c38963ccf871561";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_stages.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_stages.yaml";
    sha256 = "90eb26a47b973cff2fd4756b972e6a194d08f7dcaf404bb836d1b69c4c603039";
  }
  {
    path = "kargo-v1.11.2/kargo.akuity.io_warehouses.yaml";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/charts/kargo/resources/crds/kargo.akuity.io_warehouses.yaml";
    sha256 = "974df89e6eaca0ff905f6a830d8a403bc00bd6e06d62809902058cc4026fd6d5";
  }
  {
    path = "kargo-v1.11.2/step-schemas/argocd-common.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/argocd-common.json";
    sha256 = "d00eb8ba2fa7fd3bf30879b7174841716af2117c82e90cddca6753662142e804";
  }
  {
    path = "kargo-v1.11.2/step-schemas/argocd-update-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/argocd-update-config.json";
    sha256 = "85c33f21b981aad0d841720d37a312562146d42604c038d49e4d34e52146e4a9";
  }
  {
    path = "kargo-v1.11.2/step-schemas/argocd-wait-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/argocd-wait-config.json";
    sha256 = "edffb1e2312032bbf0d8039a71bf68a939ee3b2f7bbd03fbf56051915b92edd4";
  }
  {
    path = "kargo-v1.11.2/step-schemas/common.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/common.json";
    sha256 = "33156e718a1506905bb9c5619882d46a2aa24920bc9eb3854ffeae52e13f718a";
  }
  {
    path = "kargo-v1.11.2/step-schemas/compose-output-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/compose-output-config.json";
    sha256 = "167dd23d003a2b3489147ed7af1a0c19756f1a401b77b57f77d6ac33c572c45a";
  }
  {
    path = "kargo-v1.11.2/step-schemas/copy-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/copy-config.json";
    sha256 = "70b8f64e29fcc4af77909e9a78a9786851230b36caddd735211e31abfa539982";
  }
  {
    path = "kargo-v1.11.2/step-schemas/delete-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/delete-config.json";
    sha256 = "c9dbab9bc535b3ab12d67ef6a1dbd14c0d1a1e78f8e895c73ef3055a13ea7e6a";
  }
  {
    path = "kargo-v1.11.2/step-schemas/fail-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/fail-config.json";
    sha256 = "51df3485eb074d70f2f08a3d3000acdf9faa81cf37dfdf9352f0bb13fde9b0ae";
  }
  {
    path = "kargo-v1.11.2/step-schemas/file-write-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/file-write-config.json";
    sha256 = "7436be7b85fa1a7608f359d72b973a44f29aab64c9a33d8235b2e71bbd2b6007";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-clear-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-clear-config.json";
    sha256 = "e53ee2b72c92a237471df84a3ec3cb57bc6520738c2764654255cc7493e44647";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-clone-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-clone-config.json";
    sha256 = "7a50aad4abb13f5df3ba9f805d0ddb776def887f375b3c8feb3408e7940f1f19";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-commit-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-commit-config.json";
    sha256 = "56509a5e9f5b1afcd28f15390d49b0b4ad3bc6694394b2e2149a861a1f8efeb3";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-merge-pr-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-merge-pr-config.json";
    sha256 = "4c4a5903b18f9b875a45ba192f06cf3a6825849d2039b3c6aa21edc29af64d31";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-open-pr-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-open-pr-config.json";
    sha256 = "a2da0fda320a3534fa99a812760f6fb4c4bd2d34aeaaaaba4141b67be222b20e";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-push-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-push-config.json";
    sha256 = "4b0a2966cff823ebba03c014ae011bac50fe4736fe9a8ebaf0a46e8595836743";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-tag-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-tag-config.json";
    sha256 = "814b1a7918a378af745e7f994511891f981c32c0b0fe96719c23cd9e0d511ef1";
  }
  {
    path = "kargo-v1.11.2/step-schemas/git-wait-for-pr-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/git-wait-for-pr-config.json";
    sha256 = "82b74158bfe94f145b08f43e6cf1f07b28ebf8207c4c058b601727c317bd25ca";
  }
  {
    path = "kargo-v1.11.2/step-schemas/github-push-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/github-push-config.json";
    sha256 = "55a4136965e76123b6fd202cf4d154a705c2db1eca6ae541670cc240dedc0e63";
  }
  {
    path = "kargo-v1.11.2/step-schemas/helm-template-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/helm-template-config.json";
    sha256 = "50d434aa200e7941bd0aafa5dbf306e6c9bc2e338e851e4b2a744571327057c3";
  }
  {
    path = "kargo-v1.11.2/step-schemas/helm-update-chart-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/helm-update-chart-config.json";
    sha256 = "8451dd84d630bb947b2d22d070a3500fb59117de6fd481a9e5fbee88d88ca855";
  }
  {
    path = "kargo-v1.11.2/step-schemas/http-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/http-config.json";
    sha256 = "f6132060fd4c1a4077b28017a837caa74a034edc8ec5c184c34de84d1ff8a179";
  }
  {
    path = "kargo-v1.11.2/step-schemas/http-download-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/http-download-config.json";
    sha256 = "6d41958d80b6197b4eb90647241428f859eb3fad6f14e607b52efadf281a7efe";
  }
  {
    path = "kargo-v1.11.2/step-schemas/json-parse-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/json-parse-config.json";
    sha256 = "2af75e2330a4854ee585618dfb7096f5c0c15012978b6cb9b0800aa354932287";
  }
  {
    path = "kargo-v1.11.2/step-schemas/json-update-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/json-update-config.json";
    sha256 = "7ed3b052976edcc850bc05366a2e695973eb8bae777813d1fb0087f7bbafc5a6";
  }
  {
    path = "kargo-v1.11.2/step-schemas/kustomize-build-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/kustomize-build-config.json";
    sha256 = "8dc59b29a77e6c126b8cddf55e24c9e198566782667742a409e30fa99c11410b";
  }
  {
    path = "kargo-v1.11.2/step-schemas/kustomize-set-image-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/kustomize-set-image-config.json";
    sha256 = "e4eba6a1bd10e35f291fbaacc813a908e83d4440f1ff216f90779ac33b3af282";
  }
  {
    path = "kargo-v1.11.2/step-schemas/oci-download-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/oci-download-config.json";
    sha256 = "ced59c5de47e938ba0cb603f38a761f0edb5b318262ee5539887b36fc83da6d7";
  }
  {
    path = "kargo-v1.11.2/step-schemas/oci-push-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/oci-push-config.json";
    sha256 = "e30f8a33094d62bcd54c1d555166466a291598f9fd6a94937ee1bf9740e80cf1";
  }
  {
    path = "kargo-v1.11.2/step-schemas/set-freight-alias-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/set-freight-alias-config.json";
    sha256 = "42ae0b143c62de12477ab50b8c50f65a34af34e38c912154e3b06c24136037c9";
  }
  {
    path = "kargo-v1.11.2/step-schemas/set-metadata-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/set-metadata-config.json";
    sha256 = "fc22f3e0a09b69a2f6d8c9666050ec031e94fd749d52eec13fc27b9653df842e";
  }
  {
    path = "kargo-v1.11.2/step-schemas/toml-parse-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/toml-parse-config.json";
    sha256 = "34ed8612b2cb17ce92d156107a040e91e44c2d113c777eee829fc67dc8cc1fde";
  }
  {
    path = "kargo-v1.11.2/step-schemas/toml-update-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/toml-update-config.json";
    sha256 = "1894e5bde79d859bc8f331d9db0e336ce31cb017995ac8ecd851583d3fa52dcc";
  }
  {
    path = "kargo-v1.11.2/step-schemas/untar-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/untar-config.json";
    sha256 = "42d084685a0409741c2b295ebf7a624e4716ff4c1a503abaa3e7a9e9c67b20ae";
  }
  {
    path = "kargo-v1.11.2/step-schemas/yaml-merge-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/yaml-merge-config.json";
    sha256 = "5eea79087b3c6235b0e1297687a4d4908a03e8c6ea03e01b2302508e8deaa063";
  }
  {
    path = "kargo-v1.11.2/step-schemas/yaml-parse-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/yaml-parse-config.json";
    sha256 = "9f910785a84b9ed0b97439227630beafbb45c7174c88893a04f3263e38093e5b";
  }
  {
    path = "kargo-v1.11.2/step-schemas/yaml-update-config.json";
    url = "https://raw.githubusercontent.com/akuity/kargo/v1.11.2/pkg/promotion/runner/builtin/schemas/yaml-update-config.json";
    sha256 = "01a0bff48d03255c5dc3679c09f47e29171608765d42c6b0560a00a85df4f0d5";
  }
]

# tests/deploy/: the container's entrypoint and preStop scripts against real
# moord processes on loopback, the Dockerfile's runtime packages against
# moord's shared libraries, and every Kubernetes manifest parsed and checked.
DEPLOY_SCRIPT_TESTS := tests/deploy/test_image.sh tests/deploy/test_manifests.sh tests/deploy/test_backup.sh tests/deploy/test_entrypoint.sh
SCRIPT_TESTS += $(DEPLOY_SCRIPT_TESTS)

.PHONY: test-deploy
test-deploy: $(BUILD)/bin/moord $(BUILD)/bin/moorctl
	@BUILD=$(BUILD) tests/run.sh $(DEPLOY_SCRIPT_TESTS)

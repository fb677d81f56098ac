{
  description = "TAPPaaS installer: bare-metal installer and first-boot agent for TAPPaaS sites";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = {
    self,
    nixpkgs,
  }: let
    systems = ["x86_64-linux" "aarch64-linux"];
    forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
  in {
    packages = forAll (pkgs: {
      tappaas-installer = pkgs.rustPlatform.buildRustPackage {
        pname = "tappaas-installer";
        version = "0.1.0";
        src = self;
        cargoLock.lockFile = ./Cargo.lock;
        # The test suite needs util-linux and gdisk to read back what it writes.
        nativeCheckInputs = [pkgs.util-linux pkgs.gptfdisk pkgs.iproute2];
        meta.mainProgram = "tappaas-installer";
      };
      default = self.packages.${pkgs.system}.tappaas-installer;
    });

    devShells = forAll (pkgs: {
      default = pkgs.mkShell {
        inputsFrom = [self.packages.${pkgs.system}.tappaas-installer];
        packages = [pkgs.qemu pkgs.gptfdisk pkgs.xorriso pkgs.age pkgs.statix pkgs.deadnix pkgs.alejandra];
      };
    });

    checks = forAll (pkgs: {
      # Building the package runs the workspace's tests.
      installer = self.packages.${pkgs.system}.tappaas-installer;
    });

    formatter = forAll (pkgs: pkgs.alejandra);
  };
}

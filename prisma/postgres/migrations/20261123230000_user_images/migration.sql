-- CreateTable
CREATE TABLE "UserImage" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "tag" TEXT NOT NULL,
    "hostName" TEXT NOT NULL,
    "hosts" TEXT NOT NULL,
    "imageId" TEXT,
    "state" TEXT NOT NULL,
    "sizeBytes" DOUBLE PRECISION,
    "addedBytes" DOUBLE PRECISION,
    "log" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "UserImage_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ImageBuildLock" (
    "userId" INTEGER NOT NULL,
    "imageId" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ImageBuildLock_pkey" PRIMARY KEY ("userId")
);

-- CreateIndex
CREATE UNIQUE INDEX "UserImage_tag_key" ON "UserImage"("tag");

-- CreateIndex
CREATE INDEX "UserImage_userId_state_idx" ON "UserImage"("userId", "state");

-- CreateIndex
CREATE UNIQUE INDEX "UserImage_userId_name_version_key" ON "UserImage"("userId", "name", "version");

